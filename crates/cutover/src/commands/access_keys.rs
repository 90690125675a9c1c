//! `cutover access-keys create|ls|delete`: keys for AWS's protocols.

use crate::cli::{AccessKeyCommand, Globals, Output};
use crate::client::Client;
use crate::output;
use cutover_api::access_keys::{
    AccessKeyList, CreateAccessKeyRequest, CreateAccessKeyResponse, DeleteAccessKeyResponse,
};
use std::process::ExitCode;

pub(crate) async fn run(g: &Globals, command: AccessKeyCommand) -> anyhow::Result<ExitCode> {
    let client = Client::new(g)?;
    match command {
        AccessKeyCommand::Create { name } => {
            let resp: CreateAccessKeyResponse = client
                .post("/v1/access-keys", &CreateAccessKeyRequest { name })
                .await?;
            if g.output == Output::Json {
                output::print_json(&resp)?;
            } else {
                let k = &resp.access_key;
                println!("AccessKeyId      {}", k.access_key_id);
                println!("SecretAccessKey  {}", k.secret_access_key);
                println!("UserName         {}", k.user_name);
                println!("CreateDate       {}", k.create_date);
                println!();
                println!("The secret is shown only now. To use the key:");
                println!(
                    "  export AWS_ACCESS_KEY_ID={} AWS_SECRET_ACCESS_KEY=<the secret above>",
                    k.access_key_id
                );
                println!(
                    "  export AWS_ENDPOINT_URL={} AWS_DEFAULT_REGION=us-east-1",
                    client.base()
                );
            }
        }
        AccessKeyCommand::Ls => {
            let resp: AccessKeyList = client.get("/v1/access-keys").await?;
            let rows = resp
                .access_key_metadata
                .iter()
                .map(|k| {
                    vec![
                        k.access_key_id.clone(),
                        k.user_name.clone(),
                        k.status.as_str().to_string(),
                        k.create_date.clone(),
                        k.expiration.clone().unwrap_or_else(|| "-".into()),
                    ]
                })
                .collect();
            output::print(
                g.output,
                &resp,
                &["ACCESS KEY ID", "NAME", "STATUS", "CREATED", "EXPIRES"],
                rows,
            );
        }
        AccessKeyCommand::Delete { id } => {
            let resp: DeleteAccessKeyResponse =
                client.delete(&format!("/v1/access-keys/{id}")).await?;
            output::print(
                g.output,
                &resp,
                &["DELETED"],
                vec![vec![resp.access_key_id.clone()]],
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
