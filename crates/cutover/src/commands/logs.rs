//! `cutover logs SERVICE|TASK [--follow]`: a service name is tried first,
//! then a task id.

use crate::cli::{Globals, LogsArgs};
use crate::client::{ApiFailure, Client};
use cutover_api::query::LogsQuery;
use futures_util::StreamExt;
use std::io::Write;
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, args: LogsArgs) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    let q = LogsQuery {
        follow: args.follow,
    };
    let resp = match client
        .stream(&format!("/v1/services/{}/logs", args.target), &q)
        .await
    {
        Ok(r) => r,
        Err(e)
            if e.downcast_ref::<ApiFailure>()
                .is_some_and(|f| f.status == 404) =>
        {
            client
                .stream(&format!("/v1/tasks/{}/logs", args.target), &q)
                .await
                .map_err(|_| anyhow::anyhow!("no service or task named {:?}", args.target))?
        }
        Err(e) => return Err(e),
    };
    let mut body = resp.bytes_stream();
    let mut out = std::io::stdout().lock();
    while let Some(chunk) = body.next().await {
        out.write_all(&chunk?)?;
        out.flush()?;
    }
    Ok(ExitCode::SUCCESS)
}
