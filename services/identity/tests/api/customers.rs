use reqwest::{Method, StatusCode, header};
use serde_json::{Value, json};

use crate::helpers::{Identity, problem, zhang_wei};

crate::on_both_backends!(
    a_customer_is_found_by_the_number_they_call_from_in_any_notation,
    a_shared_number_gives_every_holder_primary_first,
    an_unknown_number_gives_no_candidate,
    id_numbers_are_masked_for_agents_and_clear_for_admins,
    a_stale_if_match_changes_nothing,
    a_patch_changes_phones_and_the_screen_pop_follows,
    an_idempotency_key_creates_one_customer,
    search_finds_by_name_phone_address_and_id_number_a_page_at_a_time,
    a_merged_customer_resolves_to_the_survivor_with_its_phones,
    every_change_is_audited_with_personal_data_masked,
    export_then_erasure_leaves_only_a_tombstone,
    search_wildcards_match_only_themselves,
    a_merge_leaves_no_personal_data_behind_and_the_export_shows_every_record,
    erasure_and_export_cover_records_merged_before_merges_scrubbed,
);

async fn a_customer_is_found_by_the_number_they_call_from_in_any_notation(app: Identity) {
    let response = app
        .post("/api/v1/customers", &app.admin, &zhang_wei())
        .await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let etag = response
        .headers()
        .get(header::ETAG)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let location = response
        .headers()
        .get(header::LOCATION)
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let created: Value = response.json().await.unwrap();
    assert_eq!(
        created["phones"][0],
        json!({"number": "+8613800138000", "label": "mobile"})
    );
    assert_eq!(created["phones"][1]["number"], "+861065529988");
    assert_eq!(etag, format!("\"{}.1\"", created["id"].as_str().unwrap()));
    assert_eq!(
        location,
        format!("/api/v1/customers/{}", created["id"].as_str().unwrap())
    );

    let agent = app.token_for(&["agent"], None).await;
    // The first answer is built from the database, the others are the cached
    // JSON sent as it is: the same answer.
    let first = app.lookup("138 0013 8000", &agent).await;
    for notation in [
        "138 0013 8000",
        "+86 138-0013-8000",
        "8613800138000",
        "13800138000",
    ] {
        let found = app.lookup(notation, &agent).await;
        assert_eq!(found, first, "{notation}");
        assert_eq!(found["phone"], "+8613800138000");
        let candidates = found["candidates"].as_array().unwrap();
        assert_eq!(candidates.len(), 1, "{notation}");
        assert_eq!(candidates[0]["customer"]["id"], created["id"]);
        assert_eq!(candidates[0]["matched_on"], "primary_phone");
        assert_eq!(candidates[0]["billing"]["status"], "not_configured");
    }

    let fetched = app.get(&location, &agent).await;
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(
        fetched
            .headers()
            .get(header::ETAG)
            .unwrap()
            .to_str()
            .unwrap(),
        etag
    );
}

async fn a_shared_number_gives_every_holder_primary_first(app: Identity) {
    let landline = "010 6552 9988";
    let parent = app
        .create(json!({"name": "李娜", "phones": [{"number": "139 0000 0001"}, {"number": landline, "label": "home"}]}))
        .await;
    let child = app
        .create(json!({"name": "李小龙", "phones": [{"number": landline, "label": "home"}]}))
        .await;
    let found = app.lookup("+86 10 6552 9988", &app.admin).await;
    let candidates = found["candidates"].as_array().unwrap();
    assert_eq!(candidates.len(), 2, "never a silent guess: {found}");
    assert_eq!(
        candidates[0]["customer"]["id"], child["id"],
        "primary holder first"
    );
    assert_eq!(candidates[0]["matched_on"], "primary_phone");
    assert_eq!(candidates[1]["customer"]["id"], parent["id"]);
    assert_eq!(candidates[1]["matched_on"], "other_phone");
}

async fn an_unknown_number_gives_no_candidate(app: Identity) {
    let found = app.lookup("+86 139 1234 5678", &app.admin).await;
    assert_eq!(found["candidates"], json!([]));
}

async fn id_numbers_are_masked_for_agents_and_clear_for_admins(app: Identity) {
    let created = app.create(zhang_wei()).await;
    assert_eq!(
        created["id_number"], "11010519491231002X",
        "admins see it whole: {created}"
    );
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let agent = app.token_for(&["agent"], None).await;
    let seen: Value = app.get(&path, &agent).await.json().await.unwrap();
    assert_eq!(seen["id_number"], "1101**********002X");
    let popped = app.lookup("13800138000", &agent).await;
    assert_eq!(
        popped["candidates"][0]["customer"]["id_number"],
        "1101**********002X"
    );
    let popped = app.lookup("13800138000", &app.admin).await;
    assert_eq!(
        popped["candidates"][0]["customer"]["id_number"],
        "11010519491231002X"
    );
}

async fn a_stale_if_match_changes_nothing(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let first = app
        .request(Method::PATCH, &path, &app.admin)
        .header(
            header::IF_MATCH,
            format!("\"{}.1\"", created["id"].as_str().unwrap()),
        )
        .json(&json!({"vip_level": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    assert_eq!(
        first.headers().get(header::ETAG).unwrap().to_str().unwrap(),
        format!("\"{}.2\"", created["id"].as_str().unwrap())
    );

    let stale = app
        .request(Method::PATCH, &path, &app.admin)
        .header(
            header::IF_MATCH,
            format!("\"{}.1\"", created["id"].as_str().unwrap()),
        )
        .json(&json!({"vip_level": 1, "name": "王芳"}))
        .send()
        .await
        .unwrap();
    let body = problem(stale, StatusCode::PRECONDITION_FAILED).await;
    assert_eq!(body["code"], "stale_version");
    let now: Value = app.get(&path, &app.admin).await.json().await.unwrap();
    assert_eq!(
        (
            now["vip_level"].as_i64(),
            now["name"].as_str(),
            now["version"].as_i64()
        ),
        (Some(5), Some("张伟"), Some(2))
    );
}

async fn a_patch_changes_phones_and_the_screen_pop_follows(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let before = app.lookup("13800138000", &app.admin).await;
    assert_eq!(before["candidates"].as_array().unwrap().len(), 1);
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let patched = app
        .request(Method::PATCH, &path, &app.admin)
        .header(header::CONTENT_TYPE, "application/merge-patch+json")
        .body(json!({"phones": [{"number": "+86 186 0000 0002"}], "email": null}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::OK);
    let patched: Value = patched.json().await.unwrap();
    assert!(patched.get("email").is_none(), "null cleared it");
    assert_eq!(patched["tags"], json!(["broadband"]), "absent fields stay");
    // The cached screen pop for the old number was dropped with the change.
    assert_eq!(
        app.lookup("13800138000", &app.admin).await["candidates"],
        json!([])
    );
    assert_eq!(
        app.lookup("18600000002", &app.admin).await["candidates"][0]["customer"]["id"],
        created["id"]
    );
}

async fn an_idempotency_key_creates_one_customer(app: Identity) {
    let body = json!({"name": "幂等测试", "phones": [{"number": "13700000001"}]});
    let mut ids = Vec::new();
    for _ in 0..3 {
        let response = app
            .request(Method::POST, "/api/v1/customers", &app.admin)
            .header("Idempotency-Key", "call-4711")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::CREATED);
        ids.push(response.json::<Value>().await.unwrap()["id"].clone());
    }
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(app.count_named("幂等测试").await, 1);

    let reused = app
        .request(Method::POST, "/api/v1/customers", &app.admin)
        .header("Idempotency-Key", "call-4711")
        .json(&json!({"name": "另一个人"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        problem(reused, StatusCode::UNPROCESSABLE_ENTITY).await["code"],
        "idempotency_key_reused"
    );
    assert_eq!(app.count_named("另一个人").await, 0);
}

async fn search_finds_by_name_phone_address_and_id_number_a_page_at_a_time(app: Identity) {
    let zhang = app.create(zhang_wei()).await;
    for index in 0..5 {
        app.create(json!({
            "name": format!("Wang Fang {index}"),
            "phones": [{"number": format!("1390000010{index}")}],
            "addresses": [{"province": "上海市", "district": "浦东新区", "street": format!("世纪大道 {index} 号")}],
        }))
        .await;
    }
    let search = |query: Vec<(&'static str, String)>| {
        let app = &app;
        async move {
            let response = app
                .request(Method::GET, "/api/v1/customers", &app.admin)
                .query(&query)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            response.json::<Value>().await.unwrap()
        }
    };
    let by_phone = search(vec![("phone", "+86 138-0013-8000".into())]).await;
    assert_eq!(by_phone["items"][0]["id"], zhang["id"]);
    let by_id = search(vec![("id_number", "11010519491231002x".into())]).await;
    assert_eq!(by_id["items"].as_array().unwrap().len(), 1);
    let by_address = search(vec![("address", "建国路".into())]).await;
    assert_eq!(by_address["items"][0]["id"], zhang["id"]);

    let first = search(vec![("name", "wang fang".into()), ("limit", "2".into())]).await;
    assert_eq!(first["items"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap().to_owned();
    let second = search(vec![
        ("name", "wang fang".into()),
        ("limit", "2".into()),
        ("cursor", cursor),
    ])
    .await;
    let third = search(vec![
        ("name", "wang fang".into()),
        ("limit", "2".into()),
        ("cursor", second["next_cursor"].as_str().unwrap().to_owned()),
    ])
    .await;
    assert_eq!(third["items"].as_array().unwrap().len(), 1);
    assert!(third.get("next_cursor").is_none());
    let mut names: Vec<String> = [&first, &second, &third]
        .iter()
        .flat_map(|page| {
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        (0..5).map(|i| format!("Wang Fang {i}")).collect::<Vec<_>>()
    );

    let no_criteria = app.get("/api/v1/customers", &app.admin).await;
    problem(no_criteria, StatusCode::BAD_REQUEST).await;
}

async fn a_merged_customer_resolves_to_the_survivor_with_its_phones(app: Identity) {
    let survivor = app.create(zhang_wei()).await;
    let duplicate = app
        .create(json!({"name": "张 伟", "phones": [{"number": "13500000003"}], "tags": ["tv"]}))
        .await;
    let supervisor = app.token_for(&["supervisor"], None).await;
    let merged = app
        .post(
            &format!(
                "/api/v1/customers/{}/merge",
                survivor["id"].as_str().unwrap()
            ),
            &supervisor,
            &json!({"merged_id": duplicate["id"]}),
        )
        .await;
    assert_eq!(merged.status(), StatusCode::OK);
    let merged: Value = merged.json().await.unwrap();
    let numbers: Vec<&str> = merged["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["+8613800138000", "+861065529988", "+8613500000003"]
    );
    assert_eq!(merged["tags"], json!(["broadband", "tv"]));

    let via_old_id: Value = app
        .get(
            &format!("/api/v1/customers/{}", duplicate["id"].as_str().unwrap()),
            &supervisor,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(via_old_id["id"], survivor["id"]);
    assert_eq!(
        app.lookup("13500000003", &supervisor).await["candidates"][0]["customer"]["id"],
        survivor["id"]
    );

    let again = app
        .post(
            &format!(
                "/api/v1/customers/{}/merge",
                survivor["id"].as_str().unwrap()
            ),
            &supervisor,
            &json!({"merged_id": duplicate["id"]}),
        )
        .await;
    problem(again, StatusCode::CONFLICT).await;
    let agent = app.token_for(&["agent"], None).await;
    let forbidden = app
        .post(
            &format!(
                "/api/v1/customers/{}/merge",
                survivor["id"].as_str().unwrap()
            ),
            &agent,
            &json!({"merged_id": duplicate["id"]}),
        )
        .await;
    problem(forbidden, StatusCode::FORBIDDEN).await;
}

async fn every_change_is_audited_with_personal_data_masked(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    app.request(Method::PATCH, &path, &app.admin)
        .json(&json!({"name": "张伟伟"}))
        .send()
        .await
        .unwrap();
    let audit: Value = app
        .get(&format!("{path}/audit"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    let entries = audit["items"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert!(audit.get("next_cursor").is_none(), "{audit}");
    assert_eq!(entries[0]["action"], "created");
    assert_eq!(entries[0]["actor"], crate::helpers::ADMIN_ID);
    assert_eq!(entries[1]["action"], "updated");
    assert_eq!(entries[1]["before"]["name"], "张**");
    assert_eq!(entries[1]["after"]["name"], "张**");
    let text = audit.to_string();
    for secret in ["11010519491231002X", "13800138000", "zhang.wei@", "建国路"] {
        assert!(!text.contains(secret), "audit leaks {secret}: {text}");
    }
    // A page at a time, oldest first.
    let first: Value = app
        .get(&format!("{path}/audit?limit=1"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first["items"][0]["action"], "created");
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .get(&format!("{path}/audit?limit=1&cursor={cursor}"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(second["items"][0]["action"], "updated");
    assert!(second.get("next_cursor").is_none(), "{second}");
    problem(
        app.get(&format!("{path}/audit?cursor=garbage"), &app.admin)
            .await,
        StatusCode::BAD_REQUEST,
    )
    .await;
    let agent = app.token_for(&["agent"], None).await;
    problem(
        app.get(&format!("{path}/audit"), &agent).await,
        StatusCode::FORBIDDEN,
    )
    .await;
}

async fn export_then_erasure_leaves_only_a_tombstone(app: Identity) {
    let created = app.create(zhang_wei()).await;
    let path = format!("/api/v1/customers/{}", created["id"].as_str().unwrap());
    let export: Value = app
        .get(&format!("{path}/export"), &app.admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(export["customer"]["id_number"], "11010519491231002X");
    assert_eq!(export["customer"]["phones"][0]["number"], "+8613800138000");
    assert!(
        export["audit"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "exported")
    );

    let agent = app.token_for(&["agent"], None).await;
    problem(
        app.request(Method::DELETE, &path, &agent)
            .send()
            .await
            .unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;

    let erased = app
        .request(Method::DELETE, &path, &app.admin)
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    let tombstone: Value = app.get(&path, &app.admin).await.json().await.unwrap();
    assert_eq!(tombstone["id"], created["id"], "the id stays");
    assert_eq!(tombstone["name"], "[erased]");
    assert_eq!(tombstone["phones"], json!([]));
    assert!(tombstone["erased_at"].is_string());
    assert!(tombstone.get("id_number").is_none() && tombstone.get("email").is_none());
    assert_eq!(
        app.lookup("13800138000", &app.admin).await["candidates"],
        json!([])
    );
    assert_eq!(app.count_named("张伟").await, 0);
    let text = app
        .get(&format!("{path}/export"), &app.admin)
        .await
        .text()
        .await
        .unwrap();
    for secret in [
        "11010519491231002X",
        "13800138000",
        "zhang.wei",
        "建国路",
        "STB-0001",
    ] {
        assert!(!text.contains(secret), "erasure left {secret}: {text}");
    }
}

async fn search_wildcards_match_only_themselves(app: Identity) {
    for (name, street) in [
        ("100% 满意", "a_b 路"),
        ("snake_case", "axb 路"),
        ("back\\slash", "c\\d 路"),
        ("Wang Fang", "cd 路"),
    ] {
        app.create(json!({"name": name, "addresses": [{"street": street}]}))
            .await;
    }
    let found = |field: &'static str, fragment: &'static str| {
        let app = &app;
        async move {
            let response = app
                .request(Method::GET, "/api/v1/customers", &app.admin)
                .query(&[(field, fragment)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let page: Value = response.json().await.unwrap();
            page["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(found("name", "%").await, ["100% 满意"]);
    assert_eq!(found("name", "_").await, ["snake_case"]);
    assert_eq!(found("name", "\\").await, ["back\\slash"]);
    assert_eq!(found("name", "g%f").await, Vec::<String>::new());
    assert_eq!(found("address", "a_b").await, ["100% 满意"]);
    assert_eq!(found("address", "c\\d").await, ["back\\slash"]);
}

impl Identity {
    async fn merge(&self, survivor: &Value, merged: &Value) -> Value {
        let response = self
            .post(
                &format!(
                    "/api/v1/customers/{}/merge",
                    survivor["id"].as_str().unwrap()
                ),
                &self.admin,
                &json!({"merged_id": merged["id"]}),
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }

    async fn export(&self, customer: &Value) -> Value {
        let response = self
            .get(
                &format!(
                    "/api/v1/customers/{}/export",
                    customer["id"].as_str().unwrap()
                ),
                &self.admin,
            )
            .await;
        assert_eq!(response.status(), StatusCode::OK);
        response.json().await.unwrap()
    }
}

fn ids_of(records: &Value) -> Vec<&str> {
    let mut ids: Vec<&str> = records
        .as_array()
        .unwrap()
        .iter()
        .map(|record| record["customer"]["id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    ids
}

async fn a_merge_leaves_no_personal_data_behind_and_the_export_shows_every_record(app: Identity) {
    let survivor = app
        .create(json!({"name": "张伟", "phones": [{"number": "13800138000"}]}))
        .await;
    let duplicate = app
        .create(json!({
            "name": "张 伟",
            "phones": [{"number": "13500000003"}],
            "email": "old.mail@example.com",
            "id_number": "110101199003070011",
            "addresses": [{"province": "北京市", "street": "建国路 88 号"}],
            "assets": [{"kind": "modem", "serial": "MDM-7"}],
        }))
        .await;
    let older = app
        .create(json!({"name": "Zhang Wei", "phones": [{"number": "13600000004"}]}))
        .await;
    // A chain: the older record into the duplicate, then the duplicate into the survivor.
    app.merge(&duplicate, &older).await;
    let merged = app.merge(&survivor, &duplicate).await;

    // The survivor took over what only the merged records held.
    let numbers: Vec<&str> = merged["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_str().unwrap())
        .collect();
    assert_eq!(
        numbers,
        ["+8613800138000", "+8613500000003", "+8613600000004"]
    );
    assert_eq!(merged["email"], "old.mail@example.com");
    assert_eq!(merged["id_number"], "110101199003070011");
    assert_eq!(merged["addresses"][0]["street"], "建国路 88 号");
    assert_eq!(merged["assets"][0]["serial"], "MDM-7");

    let export = app.export(&survivor).await;
    assert_eq!(export["customer"]["id"], survivor["id"]);
    let mut expected = vec![
        duplicate["id"].as_str().unwrap(),
        older["id"].as_str().unwrap(),
    ];
    expected.sort_unstable();
    assert_eq!(ids_of(&export["merged_records"]), expected);
    for record in export["merged_records"].as_array().unwrap() {
        assert_eq!(record["merged_into"], survivor["id"], "one hop: {record}");
        assert_eq!(record["customer"]["name"], "[merged]");
        assert!(
            record["audit"]
                .as_array()
                .unwrap()
                .iter()
                .any(|entry| entry["action"] == "merged_into"),
            "{record}"
        );
    }
    let left_behind = export["merged_records"].to_string();
    for personal in [
        "张 伟",
        "Zhang Wei",
        "old.mail",
        "110101199003070011",
        "建国路",
        "MDM-7",
    ] {
        assert!(
            !left_behind.contains(personal),
            "merged record kept {personal}: {left_behind}"
        );
    }
    // Either id exports the same person.
    assert_eq!(app.export(&older).await["customer"]["id"], survivor["id"]);
}

/// Records merged before merges scrubbed them still hold personal data: the
/// export shows it and erasure removes it.
async fn erasure_and_export_cover_records_merged_before_merges_scrubbed(app: Identity) {
    use hotline_identity::store::customer;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};

    let survivor = app.create(zhang_wei()).await;
    let legacy = app
        .create(json!({
            "name": "张 伟",
            "phones": [{"number": "13500000003"}],
            "email": "legacy@example.com",
            "id_number": "310115198506120026",
            "addresses": [{"province": "上海市", "street": "世纪大道 1 号"}],
        }))
        .await;
    let survivor_id = uuid::Uuid::parse_str(survivor["id"].as_str().unwrap()).unwrap();
    let legacy_id = uuid::Uuid::parse_str(legacy["id"].as_str().unwrap()).unwrap();
    // As the merge of an earlier version left it: pointing at the survivor, data kept.
    customer::Entity::update_many()
        .col_expr(customer::Column::MergedInto, Expr::value(survivor_id))
        .filter(customer::Column::Id.eq(legacy_id))
        .exec(app.service.db())
        .await
        .unwrap();

    let export = app.export(&survivor).await;
    let records = export["merged_records"].as_array().unwrap();
    assert_eq!(records.len(), 1, "{export}");
    assert_eq!(records[0]["customer"]["id"], legacy["id"]);
    assert_eq!(records[0]["customer"]["email"], "legacy@example.com");
    assert_eq!(records[0]["customer"]["id_number"], "310115198506120026");

    // Erasing by the merged record's id erases the person: both records.
    let erased = app
        .request(
            Method::DELETE,
            &format!("/api/v1/customers/{legacy_id}"),
            &app.admin,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(erased.status(), StatusCode::OK);
    let export = app.export(&survivor).await;
    assert!(export["customer"]["erased_at"].is_string());
    let record = &export["merged_records"][0]["customer"];
    assert_eq!(record["name"], "[erased]", "{export}");
    assert!(record["erased_at"].is_string());
    let text = export.to_string();
    for personal in [
        "legacy@example.com",
        "310115198506120026",
        "3101**",
        "世纪大道",
        "13500000003",
        "11010519491231002X",
        "zhang.wei",
    ] {
        assert!(!text.contains(personal), "erasure left {personal}: {text}");
    }
    let rows = customer::Entity::find()
        .filter(customer::Column::Id.is_in([survivor_id, legacy_id]))
        .all(app.service.db())
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    for row in rows {
        assert!(
            row.id_number_cipher.is_none() && row.email.is_none(),
            "{row:?}"
        );
        assert_eq!(row.name, "[erased]");
    }
}
