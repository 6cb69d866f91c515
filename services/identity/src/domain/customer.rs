//! A customer's data and the rules it must satisfy. Input is validated here once;
//! everything past this point holds normalised values (E.164 phones, checked ID
//! numbers).

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use hotline_kit::{
    error::{FieldError, Problems},
    rest::{CONTROL_CHARACTERS, is_plain_text},
};

use super::{
    phone::{PhoneNumber, Region},
    resident_id::ResidentId,
};

pub const PHONE_LABELS: &[&str] = &["mobile", "home", "work", "other"];
const MAX_PHONES: usize = 10;
const MAX_ADDRESSES: usize = 10;
const MAX_TAGS: usize = 20;
const MAX_ASSETS: usize = 50;
const MAX_ATTRIBUTES_BYTES: usize = 8 * 1024;

/// A phone number as a client sends it: any common notation.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PhoneInput {
    /// `138 0013 8000`, `+86 138-0013-8000` and `8613800138000` are one number.
    #[schema(example = "+86 138-0013-8000")]
    pub number: String,
    /// mobile (default), home, work or other.
    #[serde(default)]
    pub label: Option<String>,
}

/// A normalised phone number of a customer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Phone {
    /// E.164.
    #[schema(example = "+8613800138000")]
    pub number: String,
    pub label: String,
}

/// A structured postal address (province / city / district / street / building),
/// plus free text for what doesn't fit.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    #[serde(default)]
    #[schema(example = "北京市")]
    pub province: String,
    #[serde(default)]
    pub city: String,
    #[serde(default)]
    #[schema(example = "朝阳区")]
    pub district: String,
    #[serde(default)]
    pub street: String,
    /// Building, unit and room.
    #[serde(default)]
    pub building: String,
    #[serde(default)]
    pub detail: String,
}

impl Address {
    fn parts(&self) -> [&str; 6] {
        [
            &self.province,
            &self.city,
            &self.district,
            &self.street,
            &self.building,
            &self.detail,
        ]
    }

    /// Keeps the region, hides where exactly the person lives.
    pub fn masked(&self) -> Self {
        let hide = |s: &str| {
            if s.is_empty() {
                String::new()
            } else {
                "***".to_owned()
            }
        };
        Self {
            province: self.province.clone(),
            city: self.city.clone(),
            district: self.district.clone(),
            street: hide(&self.street),
            building: hide(&self.building),
            detail: hide(&self.detail),
        }
    }
}

/// Equipment at the customer's premises: set-top box, smart card, modem.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Asset {
    #[schema(example = "set_top_box")]
    pub kind: String,
    #[schema(example = "STB-2024-000123")]
    pub serial: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
}

/// The body of `POST /api/v1/customers`.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCustomer {
    /// At most 100 characters, surrounding blanks dropped.
    #[schema(
        example = "张伟",
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    #[serde(default)]
    pub phones: Vec<PhoneInput>,
    #[serde(default)]
    pub addresses: Vec<Address>,
    /// 18-character resident ID number (GB 11643); stored encrypted.
    #[serde(default)]
    #[schema(example = "11010519491231002X")]
    pub id_number: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// 0 (none) to 9.
    #[serde(default)]
    #[schema(minimum = 0, maximum = 9)]
    pub vip_level: i32,
    /// Free-form attributes (a JSON object of at most 8 KiB).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub attributes: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    pub assets: Vec<Asset>,
}

/// The body of `PATCH /api/v1/customers/{id}` (JSON merge patch): absent fields
/// stay, `null` clears an optional field.
#[derive(Clone, Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    #[schema(
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    pub phones: Option<Vec<PhoneInput>>,
    pub addresses: Option<Vec<Address>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub id_number: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    pub tags: Option<Vec<String>>,
    #[schema(minimum = 0, maximum = 9)]
    pub vip_level: Option<i32>,
    #[schema(value_type = Option<Object>)]
    pub attributes: Option<serde_json::Map<String, serde_json::Value>>,
    pub assets: Option<Vec<Asset>>,
}

/// Tells a field sent as `null` (Some(None)) from an absent one (None).
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

/// Valid, normalised customer data.
#[derive(Clone, Debug, PartialEq)]
pub struct CustomerData {
    pub name: String,
    pub phones: Vec<(PhoneNumber, String)>,
    pub addresses: Vec<Address>,
    pub id_number: Option<ResidentId>,
    pub email: Option<String>,
    pub tags: Vec<String>,
    pub vip_level: i32,
    pub attributes: serde_json::Map<String, serde_json::Value>,
    pub assets: Vec<Asset>,
}

impl NewCustomer {
    pub fn validate(self, region: Region) -> Result<CustomerData, Vec<FieldError>> {
        let mut problems = Problems::default();
        let data = CustomerData {
            name: name(&self.name, &mut problems),
            phones: phones(&self.phones, region, &mut problems),
            addresses: addresses(self.addresses, &mut problems),
            id_number: id_number(self.id_number.as_deref(), &mut problems),
            email: email(self.email.as_deref(), &mut problems),
            tags: tags(self.tags, &mut problems),
            vip_level: vip_level(self.vip_level, &mut problems),
            attributes: attributes(self.attributes, &mut problems),
            assets: assets(self.assets, &mut problems),
        };
        problems.finish(data)
    }
}

impl CustomerData {
    /// The data after `patch`, validated as a whole.
    pub fn patched(
        self,
        patch: CustomerPatch,
        region: Region,
    ) -> Result<CustomerData, Vec<FieldError>> {
        let mut problems = Problems::default();
        let data = CustomerData {
            name: match patch.name {
                Some(value) => name(&value, &mut problems),
                None => self.name,
            },
            phones: match patch.phones {
                Some(value) => phones(&value, region, &mut problems),
                None => self.phones,
            },
            addresses: match patch.addresses {
                Some(value) => addresses(value, &mut problems),
                None => self.addresses,
            },
            id_number: match patch.id_number {
                Some(value) => id_number(value.as_deref(), &mut problems),
                None => self.id_number,
            },
            email: match patch.email {
                Some(value) => email(value.as_deref(), &mut problems),
                None => self.email,
            },
            tags: match patch.tags {
                Some(value) => tags(value, &mut problems),
                None => self.tags,
            },
            vip_level: match patch.vip_level {
                Some(value) => vip_level(value, &mut problems),
                None => self.vip_level,
            },
            attributes: match patch.attributes {
                Some(value) => attributes(value, &mut problems),
                None => self.attributes,
            },
            assets: match patch.assets {
                Some(value) => assets(value, &mut problems),
                None => self.assets,
            },
        };
        problems.finish(data)
    }

    /// The data of one person held in two records, as one: `self` wins where
    /// both have a value, `other` fills the gaps, lists are joined without
    /// duplicates (a merge, which then scrubs `other`'s record).
    pub fn absorb(mut self, other: CustomerData) -> CustomerData {
        fn join<T: PartialEq>(into: &mut Vec<T>, from: Vec<T>) {
            for item in from {
                if !into.contains(&item) {
                    into.push(item);
                }
            }
        }
        for (number, label) in other.phones {
            if !self.phones.iter().any(|(known, _)| *known == number) {
                self.phones.push((number, label));
            }
        }
        join(&mut self.addresses, other.addresses);
        join(&mut self.tags, other.tags);
        join(&mut self.assets, other.assets);
        self.id_number = self.id_number.or(other.id_number);
        self.email = self.email.or(other.email);
        self.vip_level = self.vip_level.max(other.vip_level);
        for (key, value) in other.attributes {
            self.attributes.entry(key).or_insert(value);
        }
        self
    }

    /// Lower-cased text of every address, searched by fragment.
    pub fn address_text(&self) -> String {
        self.addresses
            .iter()
            .map(|address| address.parts().join(" "))
            .collect::<Vec<_>>()
            .join(" | ")
            .to_lowercase()
    }
}

fn text(value: &str, pointer: &str, max: usize, required: bool, problems: &mut Problems) -> String {
    let value = value.trim();
    if required && value.is_empty() {
        problems.add(pointer, "must not be empty");
    } else if value.chars().count() > max {
        problems.add(pointer, format!("must be at most {max} characters"));
    } else if !is_plain_text(value) {
        problems.add(pointer, CONTROL_CHARACTERS);
    }
    value.to_owned()
}

fn name(value: &str, problems: &mut Problems) -> String {
    text(value, "/name", 100, true, problems)
}

fn phones(
    inputs: &[PhoneInput],
    region: Region,
    problems: &mut Problems,
) -> Vec<(PhoneNumber, String)> {
    if inputs.len() > MAX_PHONES {
        problems.add("/phones", format!("at most {MAX_PHONES} phone numbers"));
        return Vec::new();
    }
    let mut phones: Vec<(PhoneNumber, String)> = Vec::new();
    for (index, input) in inputs.iter().enumerate() {
        let label = input.label.clone().unwrap_or_else(|| "mobile".to_owned());
        if !PHONE_LABELS.contains(&label.as_str()) {
            problems.add(
                format!("/phones/{index}/label"),
                format!("must be one of {}", PHONE_LABELS.join(", ")),
            );
        }
        match PhoneNumber::parse(&input.number, region) {
            Ok(number) if phones.iter().any(|(known, _)| *known == number) => {
                problems.add(format!("/phones/{index}/number"), "listed twice");
            }
            Ok(number) => phones.push((number, label)),
            Err(error) => problems.add(format!("/phones/{index}/number"), error.to_string()),
        }
    }
    phones
}

fn addresses(values: Vec<Address>, problems: &mut Problems) -> Vec<Address> {
    if values.len() > MAX_ADDRESSES {
        problems.add("/addresses", format!("at most {MAX_ADDRESSES} addresses"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(index, address)| {
            let field = |name: &str, value: &str, max: usize, problems: &mut Problems| {
                text(
                    value,
                    &format!("/addresses/{index}/{name}"),
                    max,
                    false,
                    problems,
                )
            };
            let address = Address {
                province: field("province", &address.province, 32, problems),
                city: field("city", &address.city, 32, problems),
                district: field("district", &address.district, 32, problems),
                street: field("street", &address.street, 100, problems),
                building: field("building", &address.building, 100, problems),
                detail: field("detail", &address.detail, 200, problems),
            };
            if address.parts().iter().all(|part| part.is_empty()) {
                problems.add(format!("/addresses/{index}"), "address is empty");
            }
            address
        })
        .collect()
}

fn id_number(value: Option<&str>, problems: &mut Problems) -> Option<ResidentId> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    match ResidentId::parse(value) {
        Ok(id) => Some(id),
        Err(error) => {
            problems.add("/id_number", error.to_string());
            None
        }
    }
}

fn email(value: Option<&str>, problems: &mut Problems) -> Option<String> {
    let value = value?.trim();
    if value.is_empty() {
        return None;
    }
    let valid = value.len() <= 254
        && value.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
        })
        && !value.chars().any(char::is_whitespace);
    if !is_plain_text(value) {
        problems.add("/email", CONTROL_CHARACTERS);
    } else if !valid {
        problems.add("/email", "not a valid e-mail address");
    }
    Some(value.to_lowercase())
}

fn tags(values: Vec<String>, problems: &mut Problems) -> Vec<String> {
    if values.len() > MAX_TAGS {
        problems.add("/tags", format!("at most {MAX_TAGS} tags"));
    }
    let mut tags: Vec<String> = Vec::new();
    for (index, tag) in values.iter().enumerate() {
        let tag = text(tag, &format!("/tags/{index}"), 32, true, problems);
        if !tags.contains(&tag) {
            tags.push(tag);
        }
    }
    tags
}

fn vip_level(value: i32, problems: &mut Problems) -> i32 {
    if !(0..=9).contains(&value) {
        problems.add("/vip_level", "must be between 0 and 9");
    }
    value
}

fn attributes(
    value: serde_json::Map<String, serde_json::Value>,
    problems: &mut Problems,
) -> serde_json::Map<String, serde_json::Value> {
    let size = serde_json::to_vec(&value)
        .map(|bytes| bytes.len())
        .unwrap_or(usize::MAX);
    if size > MAX_ATTRIBUTES_BYTES {
        problems.add(
            "/attributes",
            format!("must be at most {MAX_ATTRIBUTES_BYTES} bytes of JSON"),
        );
    } else if value
        .iter()
        .any(|(key, value)| key.contains('\0') || contains_nul(value))
    {
        // Free text may hold line breaks, but no database stores NUL in JSON text.
        problems.add("/attributes", "must not contain NUL characters");
    }
    value
}

fn contains_nul(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(text) => text.contains('\0'),
        serde_json::Value::Array(items) => items.iter().any(contains_nul),
        serde_json::Value::Object(map) => map
            .iter()
            .any(|(key, value)| key.contains('\0') || contains_nul(value)),
        serde_json::Value::Null | serde_json::Value::Bool(_) | serde_json::Value::Number(_) => {
            false
        }
    }
}

fn assets(values: Vec<Asset>, problems: &mut Problems) -> Vec<Asset> {
    if values.len() > MAX_ASSETS {
        problems.add("/assets", format!("at most {MAX_ASSETS} assets"));
    }
    values
        .into_iter()
        .enumerate()
        .map(|(index, asset)| Asset {
            kind: text(
                &asset.kind,
                &format!("/assets/{index}/kind"),
                32,
                true,
                problems,
            ),
            serial: text(
                &asset.serial,
                &format!("/assets/{index}/serial"),
                64,
                true,
                problems,
            ),
            model: asset.model.map(|model| {
                text(
                    &model,
                    &format!("/assets/{index}/model"),
                    64,
                    false,
                    problems,
                )
            }),
        })
        .collect()
}

/// A name as audit records and logs show it: the first character only.
pub fn mask_name(name: &str) -> String {
    let mut chars = name.chars();
    match chars.next() {
        Some(first) if chars.next().is_some() => format!("{first}**"),
        Some(first) => first.to_string(),
        None => String::new(),
    }
}

pub fn mask_email(email: &str) -> String {
    match email.split_once('@') {
        Some((local, domain)) => {
            let first = local.chars().next().map(String::from).unwrap_or_default();
            format!("{first}***@{domain}")
        }
        None => "***".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region() -> Region {
        "CN".parse().unwrap_or_else(|_| panic!("CN is a region"))
    }

    fn new_customer(json: serde_json::Value) -> NewCustomer {
        serde_json::from_value(json).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn phones_in_any_notation_normalise_to_one_number() {
        let data = new_customer(serde_json::json!({
            "name": " 张伟 ",
            "phones": [{"number": "138 0013 8000"}, {"number": "010 6552 9988", "label": "home"}],
            "email": "Zhang.Wei@Example.com",
        }))
        .validate(region())
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(data.name, "张伟");
        assert_eq!(data.phones[0].0.as_str(), "+8613800138000");
        assert_eq!(data.phones[1].1, "home");
        assert_eq!(data.email.as_deref(), Some("zhang.wei@example.com"));
    }

    #[test]
    fn every_problem_is_reported_with_its_field() {
        let errors = new_customer(serde_json::json!({
            "name": "",
            "phones": [{"number": "12"}, {"number": "+86 138-0013-8000", "label": "fax"}],
            "id_number": "110105194912310021",
            "email": "nope",
            "vip_level": 12,
        }))
        .validate(region())
        .err()
        .unwrap_or_default();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(
            pointers,
            [
                "/name",
                "/phones/0/number",
                "/phones/1/label",
                "/id_number",
                "/email",
                "/vip_level"
            ]
        );
    }

    #[test]
    fn the_same_number_twice_is_rejected() {
        let errors = new_customer(serde_json::json!({
            "name": "x",
            "phones": [{"number": "13800138000"}, {"number": "+86 138 0013 8000"}],
        }))
        .validate(region())
        .err()
        .unwrap_or_default();
        assert_eq!(errors[0].pointer, "/phones/1/number");
    }

    #[test]
    fn a_patch_changes_only_what_it_names_and_null_clears() {
        let data = new_customer(serde_json::json!({"name": "a", "email": "a@b.cn", "tags": ["x"]}))
            .validate(region())
            .unwrap_or_else(|e| panic!("{e:?}"));
        let patch: CustomerPatch =
            serde_json::from_value(serde_json::json!({"email": null, "vip_level": 3}))
                .unwrap_or_default();
        let patched = data
            .patched(patch, region())
            .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(patched.email, None);
        assert_eq!(patched.vip_level, 3);
        assert_eq!(patched.tags, ["x"]);
    }

    #[test]
    fn unknown_fields_are_rejected() {
        let result: Result<NewCustomer, _> =
            serde_json::from_value(serde_json::json!({"name": "a", "nmae": "b"}));
        assert!(result.is_err());
    }

    #[test]
    fn control_characters_are_refused_in_every_text_field() {
        let errors = new_customer(serde_json::json!({
            "name": "a\u{0}b",
            "email": "a\u{0}@b.cn",
            "addresses": [{"city": "x\u{1}"}],
        }))
        .validate(region())
        .err()
        .unwrap_or_default();
        let pointers: Vec<_> = errors.iter().map(|e| e.pointer.as_str()).collect();
        assert_eq!(pointers, ["/name", "/addresses/0/city", "/email"]);
        assert!(errors.iter().all(|e| e.message == CONTROL_CHARACTERS));
    }

    #[test]
    fn absorbing_keeps_the_survivors_values_and_fills_its_gaps() {
        let survivor = new_customer(serde_json::json!({
            "name": "张伟",
            "phones": [{"number": "13800138000"}],
            "tags": ["a"],
            "attributes": {"k": 1},
            "addresses": [{"city": "北京市"}],
        }))
        .validate(region())
        .unwrap_or_else(|e| panic!("{e:?}"));
        let other = new_customer(serde_json::json!({
            "name": "张 伟",
            "phones": [{"number": "13800138000", "label": "home"}, {"number": "13500000003"}],
            "id_number": "11010519491231002X",
            "email": "old@example.com",
            "tags": ["a", "b"],
            "vip_level": 3,
            "attributes": {"k": 2, "other": true},
            "addresses": [{"city": "北京市"}, {"city": "上海市"}],
        }))
        .validate(region())
        .unwrap_or_else(|e| panic!("{e:?}"));
        let one = survivor.absorb(other);
        assert_eq!(one.name, "张伟");
        let numbers: Vec<_> = one
            .phones
            .iter()
            .map(|(n, l)| (n.as_str(), l.as_str()))
            .collect();
        assert_eq!(
            numbers,
            [("+8613800138000", "mobile"), ("+8613500000003", "mobile")]
        );
        assert_eq!(
            one.id_number.map(|id| id.masked()).as_deref(),
            Some("1101**********002X")
        );
        assert_eq!(one.email.as_deref(), Some("old@example.com"));
        assert_eq!(one.tags, ["a", "b"]);
        assert_eq!(one.vip_level, 3);
        assert_eq!(one.attributes["k"], 1);
        assert_eq!(one.attributes["other"], true);
        assert_eq!(one.addresses.len(), 2);
    }

    #[test]
    fn masks() {
        assert_eq!(mask_name("张伟"), "张**");
        assert_eq!(mask_email("zhang@example.com"), "z***@example.com");
    }
}
