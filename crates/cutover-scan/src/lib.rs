//! Cutover's image scanner. Placeholder while modules land.
pub mod version;
