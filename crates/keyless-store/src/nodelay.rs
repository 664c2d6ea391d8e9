//! `TCP_NODELAY` on the PostgreSQL connections.
//!
//! sqlx 0.9.0 opens its TCP sockets without `TCP_NODELAY` (a regression: sqlx issue #4335, fixed upstream
//! by pull request #4336, not released as of 0.9.0). Then a statement longer than one TCP segment — a
//! group commit's multi-row `INSERT` — leaves its tail in Nagle's buffer until the server's delayed ACK
//! arrives: about 40 ms per batch on Linux, which capped exchanges on PostgreSQL at ~600/s in the load
//! benchmark. sqlx gives no access to its socket, so after every new connection `set_for_peer_port`
//! finds this process's TCP sockets connected to the database's port — listing `/proc/self/fd` and
//! duplicating each descriptor with `pidfd_getfd`, which needs no `unsafe` — and sets the option on them.
//! It is idempotent and harmless for any other socket with that peer port. Remove this module once the
//! sqlx in use sets the option itself.

use std::io;

/// Sets `TCP_NODELAY` on every TCP socket of this process whose peer port is `port`; returns how many.
pub(crate) fn set_for_peer_port(port: u16) -> io::Result<usize> {
    let sockets = sockets_to_peer_port(port)?;
    for socket in &sockets {
        rustix::net::sockopt::set_tcp_nodelay(socket, true)?;
    }
    Ok(sockets.len())
}

/// How many TCP sockets of this process have peer port `port`, and how many of them have
/// `TCP_NODELAY` (for the tests).
pub fn count_for_peer_port(port: u16) -> io::Result<(usize, usize)> {
    let sockets = sockets_to_peer_port(port)?;
    let mut with_nodelay = 0;
    for socket in &sockets {
        with_nodelay += usize::from(rustix::net::sockopt::tcp_nodelay(socket)?);
    }
    Ok((sockets.len(), with_nodelay))
}

/// Duplicates of this process's TCP sockets whose peer port is `port`.
#[cfg(target_os = "linux")]
fn sockets_to_peer_port(port: u16) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    use rustix::net::{SocketType, getpeername, sockopt};
    use rustix::process::{PidfdFlags, PidfdGetfdFlags, getpid, pidfd_getfd, pidfd_open};

    let me = pidfd_open(getpid(), PidfdFlags::empty())?;
    let mut sockets = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        let Some(fd) = entry?.file_name().to_str().and_then(|name| name.parse::<i32>().ok()) else {
            continue;
        };
        // A descriptor closed since the listing cannot be duplicated: skip it.
        let Ok(socket) = pidfd_getfd(&me, fd, PidfdGetfdFlags::empty()) else {
            continue;
        };
        if sockopt::socket_type(&socket).ok() != Some(SocketType::STREAM) {
            continue;
        }
        let peer = getpeername(&socket)
            .ok()
            .flatten()
            .and_then(|address| std::net::SocketAddr::try_from(address).ok());
        if peer.is_some_and(|peer| peer.port() == port) {
            sockets.push(socket);
        }
    }
    Ok(sockets)
}

/// Elsewhere: nothing found.
#[cfg(not(target_os = "linux"))]
fn sockets_to_peer_port(_port: u16) -> io::Result<Vec<std::os::fd::OwnedFd>> {
    Ok(Vec::new())
}
