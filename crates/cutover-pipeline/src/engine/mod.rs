//! The pure execution engine: inputs, effects, and the state of executions.
//!
//! [`PipelineState`] holds one pipeline's definition and all its executions.
//! The driver calls [`PipelineState::handle`] with the current time and an
//! [`Input`], **persists the state, then carries out the returned
//! [`Effect`]s**, and feeds their results back as inputs. It wakes the engine
//! with [`Input::Tick`] at [`PipelineState::next_wakeup`]. After a restart it
//! loads the state and calls [`PipelineState::resume`], which re-issues every
//! action still in flight with the same attempt number, so the driver can
//! make each `(execution, stage, action, attempt)` idempotent.

mod state;
mod types;

pub use state::PipelineState;
pub use types::*;
