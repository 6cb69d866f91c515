//! Loads a population of customers into identity's PostgreSQL schema through
//! identity's own bulk import: `make seed` (1,000,000 by default,
//! HOTLINE_BENCH_CUSTOMERS to change). Idempotent: tops up to the target count.

use std::time::Instant;

use hotline_identity::domain::customer::{Address, NewCustomer, PhoneInput};
use hotline_kit::auth::{Principal, Role};
use hotline_system_tests::{bench_config, seeded_phone};

const BATCH: u64 = 2_000;
const DISTRICTS: &[&str] = &["朝阳区", "海淀区", "东城区", "西城区", "丰台区", "通州区"];
const SURNAMES: &[&str] = &["张", "王", "李", "赵", "刘", "陈", "杨", "黄"];

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let target: u64 = std::env::var("HOTLINE_BENCH_CUSTOMERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let config = bench_config()?;
    let platform = hotline::connect_platform(&config).await?;
    let (identity, _) = hotline::build_identity(&config, &platform).await?;
    let service = identity.service();
    let region = config.identity.region().map_err(anyhow::Error::msg)?;
    let admin = Principal {
        subject: "seed".into(),
        roles: [Role::Admin].into_iter().collect(),
        partner_id: None,
        token: String::new(),
    };
    let existing = service.count_customers().await?;
    println!("{existing} customers present, target {target}");
    let started = Instant::now();
    let mut next = existing;
    while next < target {
        let end = (next + BATCH).min(target);
        let batch = (next..end)
            .map(|index| customer(index).validate(region))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|errors| anyhow::anyhow!("generated customer invalid: {errors:?}"))?;
        service.import_batch(&admin, batch).await?;
        next = end;
        if next.is_multiple_of(100_000) || next == target {
            let rate = (next - existing) as f64 / started.elapsed().as_secs_f64();
            println!("{next} customers ({rate:.0}/s)");
        }
    }
    // Fresh statistics, so the planner knows the tables' real sizes.
    sea_orm::ConnectionTrait::execute_unprepared(service.db(), "ANALYZE").await?;
    println!("seeded in {:.1}s", started.elapsed().as_secs_f64());
    Ok(())
}

fn customer(index: u64) -> NewCustomer {
    let surname = SURNAMES[(index % SURNAMES.len() as u64) as usize];
    let mut phones = vec![PhoneInput {
        number: seeded_phone(index),
        label: None,
    }];
    // One household in fifty shares a landline with its neighbour: lookups of
    // those numbers have two candidates, as in real call centers.
    if index % 50 < 2 {
        phones.push(PhoneInput {
            number: format!("+8610{:08}", 60_000_000 + index / 50),
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
