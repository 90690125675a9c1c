pub mod glob;
pub mod spec;
pub mod vars;
