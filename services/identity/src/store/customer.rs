use sea_orm::entity::prelude::*;

/// Associated data the ID number is encrypted with.
pub const ID_NUMBER_AD: &[u8] = b"resident_id";
/// Blind-index domain of the ID number's search hash.
pub const ID_NUMBER_INDEX: &str = "resident_id";

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "customer")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub name: String,
    /// Lower-cased name, for case-insensitive search.
    pub name_key: String,
    pub email: Option<String>,
    /// AES-256-GCM ciphertext of the resident ID number (see `crate::pii`).
    pub id_number_cipher: Option<Vec<u8>>,
    /// Keyed hash of the ID number: equality search without decrypting.
    pub id_number_hash: Option<String>,
    pub id_number_masked: Option<String>,
    pub addresses: Json,
    /// Lower-cased concatenation of every address, for fragment search.
    pub address_text: String,
    pub tags: Json,
    pub vip_level: i32,
    pub attributes: Json,
    pub assets: Json,
    pub version: i64,
    pub merged_into: Option<Uuid>,
    pub erased_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::customer_phone::Entity")]
    Phones,
}

impl Related<super::customer_phone::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Phones.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
