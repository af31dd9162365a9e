//! artisync's core: everything that touches file bytes (hashing, copy-with-hash,
//! tree walks, part digests) and the local store's write protocol (`local_store`, its
//! crash rules written at its door). Synchronous and thin: owned paths in, plain data
//! out; the Python package decides what to hash, what to store and when.

pub mod caller;
pub mod copy;
pub mod error;
pub mod fetch;
pub mod hash;
pub mod hash_lanes;
pub mod local_store;
pub mod manifest;
pub mod parts;
pub mod progress;
pub mod walk;

#[cfg(feature = "python")]
mod python;
