//! Hotline's wire contracts, generated from `proto/hotline/**.proto`, and the
//! traits through which services call each other — implemented by the callee
//! itself in one process and by a gRPC client across processes.

#![allow(clippy::all, clippy::pedantic)] // generated code

pub mod identity {
    pub mod v1 {
        tonic::include_proto!("hotline.identity.v1");
    }
}

pub mod routing {
    pub mod v1 {
        tonic::include_proto!("hotline.routing.v1");
    }
}

pub mod ticketing {
    pub mod v1 {
        tonic::include_proto!("hotline.ticketing.v1");
    }
}

pub mod events {
    pub mod v1 {
        tonic::include_proto!("hotline.events.v1");
    }
}

pub mod clients;
pub mod convert;

pub use convert::RestName;

/// Every message and service above, for gRPC server reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/hotline_descriptor.bin"));
