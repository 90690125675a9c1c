//! Work that must finish once it started, whoever awaits it: an API
//! handler's future is dropped when its client goes away, so a commit and
//! the steps that must follow it run on a task of their own.

use std::future::Future;

/// Runs `work` on its own task and returns its result; a panic inside is
/// resumed in the caller, and a runtime shutting down is
/// [`cutover_store::StoreError::ShuttingDown`].
pub(crate) async fn to_completion<T, E>(
    work: impl Future<Output = Result<T, E>> + Send + 'static,
) -> Result<T, E>
where
    T: Send + 'static,
    E: From<cutover_store::StoreError> + Send + 'static,
{
    match tokio::spawn(work).await {
        Ok(result) => result,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(_) => Err(cutover_store::StoreError::ShuttingDown.into()),
    }
}
