//! The proxy's listener: a TCP socket with a deep accept queue, or a Unix socket that
//! replaces a stale one left by a process that is gone.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use tokio::net::{TcpListener, UnixListener};

use super::Error;
use crate::config::Listen;
use crate::server::Listener;

/// The accept queue of the proxy's TCP listener. tokio's `TcpListener::bind` asks for 1,024:
/// a batch job opening 2,000 connections at once overflowed it (the load bench's `wan` part
/// counted ~2,300 dropped SYNs, each a client waiting a second to retry). The kernel caps it
/// at `net.core.somaxconn` (4,096 on current Linux).
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds `addr` as tokio's `TcpListener::bind` does (`SO_REUSEADDR` on Unix), with a deeper
/// accept queue.
fn listen_tcp(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    #[cfg(unix)]
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Binds `server.listen`.
pub(super) async fn bind_proxy(listen: &Listen) -> Result<Listener, Error> {
    match listen {
        Listen::Tcp(addr) => listen_tcp(*addr)
            .map(Listener::Tcp)
            .map_err(|source| Error::Bind {
                key: "server.listen",
                addr: addr.to_string(),
                source,
            }),
        Listen::Unix(path) => {
            let bind_error = |source| Error::Bind {
                key: "server.listen",
                addr: format!("unix:{}", path.display()),
                source,
            };
            remove_stale_socket(path).map_err(bind_error)?;
            let listener = UnixListener::bind(path).map_err(bind_error)?;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))
                .map_err(bind_error)?;
            Ok(Listener::Unix(listener, path.clone()))
        }
    }
}

/// Removes a socket file left by a process that is gone; refuses one that still answers.
fn remove_stale_socket(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
        Ok(meta) if !meta.file_type().is_socket() => Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file that is not a socket is in the way",
        )),
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Err(std::io::Error::new(
                std::io::ErrorKind::AddrInUse,
                "another process is listening on this socket",
            )),
            Err(_) => std::fs::remove_file(path),
        },
    }
}
