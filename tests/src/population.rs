//! The benchmarks' customers: generated the same way every time, loaded through
//! identity's own bulk import.

use hotline::Config;
use hotline_identity::domain::customer::{Address, NewCustomer, PhoneInput};
use hotline_kit::auth::{Principal, Role};

/// Customers per import transaction; SQLite takes fewer, its statements
/// having at most 32,766 parameters.
const BATCH: u64 = 2_000;
const SQLITE_BATCH: u64 = 500;
const DISTRICTS: &[&str] = &["朝阳区", "海淀区", "东城区", "西城区", "丰台区", "通州区"];
const SURNAMES: &[&str] = &["张", "王", "李", "赵", "刘", "陈", "杨", "黄"];

/// Phone number `index` of the population (unique mobile numbers).
pub fn seeded_phone(index: u64) -> String {
    format!("+86138{:08}", index % 100_000_000)
}

/// The landline customers `2 k` and `2 k + 1` of every fifty share (the first
/// two of each fifty): a lookup of it has two candidates.
pub fn shared_landline(index: u64) -> Option<String> {
    (index % 50 < 2).then(|| format!("+8610{:08}", 60_000_000 + index / 50))
}

/// Customer `index` of the population.
pub fn seeded_customer(index: u64) -> NewCustomer {
    let surname = SURNAMES[(index % SURNAMES.len() as u64) as usize];
    let mut phones = vec![PhoneInput {
        number: seeded_phone(index),
        label: None,
    }];
    // One household in fifty shares a landline with its neighbour, as in real
    // call centers.
    if let Some(landline) = shared_landline(index) {
        phones.push(PhoneInput {
            number: landline,
            label: Some("home".into()),
        });
    }
    NewCustomer {
        name: format!("{surname}客户{index}"),
        phones,
        addresses: vec![Address {
            province: "北京市".into(),
            city: "北京市".into(),
            district: DISTRICTS[(index % DISTRICTS.len() as u64) as usize].into(),
            street: format!("建国路 {} 号", index % 500),
            building: format!("{} 号楼 {} 单元", index % 30, index % 6),
            detail: String::new(),
        }],
        id_number: None,
        email: Some(format!("customer{index}@example.com")),
        tags: vec!["broadband".into()],
        vip_level: i32::from(index.is_multiple_of(10)),
        attributes: serde_json::Map::new(),
        assets: Vec::new(),
    }
}

/// Tops identity's customers (on `config`'s database) up to `target`, telling
/// `progress` each batch's end; the number there was before.
pub async fn seed(
    config: &Config,
    target: u64,
    mut progress: impl FnMut(u64),
) -> anyhow::Result<u64> {
    let platform = hotline::connect_platform(config).await?;
    let (identity, _) = hotline::build_identity(config, &platform).await?;
    let service = identity.service();
    let region = config.identity.region().map_err(anyhow::Error::msg)?;
    let admin = Principal {
        subject: "seed".into(),
        roles: [Role::Admin].into_iter().collect(),
        partner_id: None,
        token: String::new(),
    };
    let postgres = service.db().get_database_backend() == sea_orm::DbBackend::Postgres;
    let batch_size = if postgres { BATCH } else { SQLITE_BATCH };
    let existing = service.count_customers().await?;
    let mut next = existing;
    while next < target {
        let end = (next + batch_size).min(target);
        let batch = (next..end)
            .map(|index| seeded_customer(index).validate(region))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|errors| anyhow::anyhow!("generated customer invalid: {errors:?}"))?;
        service.import_batch(&admin, batch).await?;
        next = end;
        progress(next);
    }
    if postgres {
        // Fresh statistics, so the planner knows the tables' real sizes.
        sea_orm::ConnectionTrait::execute_unprepared(service.db(), "ANALYZE").await?;
    }
    // The server the benchmark starts next opens the same database.
    drop((identity, platform));
    Ok(existing)
}
