//! Customer identity domain types: pure values and rules, no I/O.

pub mod customer;
pub mod phone;
pub mod resident_id;
