//! Authentication: the node's identity, else the agent's keys, else the default
//! key files, with an error that lists everything tried. Nothing here reads
//! known_hosts or runs a command.

use std::path::{Path, PathBuf};

use ssh2::{ErrorCode, Session};

use super::{env_path, Ctx};
use crate::transport::TransportError;

/// The default key files tried when a node names no identity and the agent has
/// none that works, in OpenSSH's order.
const DEFAULT_KEY_FILES: &[&str] = &["id_ed25519", "id_ecdsa", "id_rsa"];

/// Tries the identity if one is given; else the agent's keys, then the default
/// key files that exist. The error lists everything tried and why it failed.
pub(super) fn authenticate(
    ctx: &Ctx,
    session: &Session,
    user: &str,
    identity: Option<&Path>,
) -> Result<(), TransportError> {
    let mut tried: Vec<String> = Vec::new();
    if let Some(path) = identity {
        match try_key_file(session, user, path) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("{} ({why})", path.display())),
        }
    } else {
        match try_agent(session, user) {
            Ok(()) => return Ok(()),
            Err(why) => tried.push(format!("ssh-agent ({why})")),
        }
        let home = env_path("HOME").unwrap_or_else(|| PathBuf::from("/"));
        let files: Vec<PathBuf> = DEFAULT_KEY_FILES
            .iter()
            .map(|f| home.join(".ssh").join(f))
            .collect();
        let mut any_file = false;
        for path in files.iter().filter(|p| p.exists()) {
            any_file = true;
            match try_key_file(session, user, path) {
                Ok(()) => return Ok(()),
                Err(why) => tried.push(format!("{} ({why})", path.display())),
            }
        }
        if !any_file {
            tried.push(format!("no key file in {}", home.join(".ssh").display()));
        }
    }
    Err(TransportError::Auth {
        node: ctx.node.clone(),
        user: user.to_string(),
        reason: format!("tried {}", tried.join("; ")),
    })
}

pub(super) fn try_key_file(session: &Session, user: &str, path: &Path) -> Result<(), String> {
    if !path.exists() {
        return Err("no such file".into());
    }
    match session.userauth_pubkey_file(user, None, path, None) {
        Ok(()) if session.authenticated() => Ok(()),
        Ok(()) => Err("not accepted".into()),
        Err(e) => Err(auth_reason(&e)),
    }
}

pub(super) fn try_agent(session: &Session, user: &str) -> Result<(), String> {
    if env_path("SSH_AUTH_SOCK").is_none() {
        return Err("SSH_AUTH_SOCK not set".into());
    }
    let mut agent = session.agent().map_err(|e| e.message().to_string())?;
    agent
        .connect()
        .map_err(|e| format!("cannot connect: {}", e.message()))?;
    agent
        .list_identities()
        .map_err(|e| format!("cannot list keys: {}", e.message()))?;
    let keys = agent
        .identities()
        .map_err(|e| format!("cannot list keys: {}", e.message()))?;
    for key in &keys {
        if agent.userauth(user, key).is_ok() && session.authenticated() {
            let _ = agent.disconnect();
            return Ok(());
        }
    }
    let _ = agent.disconnect();
    Err(format!("{} key(s), none accepted", keys.len()))
}

/// libssh2's messages for a refused key are about its own internals; say it plainly.
pub(super) fn auth_reason(e: &ssh2::Error) -> String {
    match e.code() {
        ErrorCode::Session(-18) => "key refused by the server".into(), // LIBSSH2_ERROR_AUTHENTICATION_FAILED
        ErrorCode::Session(-19) => "key refused by the server".into(), // LIBSSH2_ERROR_PUBLICKEY_UNVERIFIED
        ErrorCode::Session(-16) => format!(
            "cannot read the key file (encrypted keys are not supported): {}",
            e.message()
        ), // LIBSSH2_ERROR_FILE
        _ => e.message().to_string(),
    }
}
