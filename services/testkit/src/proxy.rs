//! A TCP proxy a test puts between a service and one of its servers, to take
//! the server "down" (refuse new connections, cut live ones) and bring it back
//! on the same address, without touching the shared server itself.

use std::{net::SocketAddr, sync::Arc};

use tokio::{
    net::{TcpListener, TcpStream},
    sync::Mutex,
    task::JoinHandle,
};
use tokio_util::sync::CancellationToken;

pub struct TcpProxy {
    addr: SocketAddr,
    upstream: String,
    running: Mutex<Option<Running>>,
}

struct Running {
    cut: CancellationToken,
    acceptor: JoinHandle<()>,
}

impl TcpProxy {
    /// A proxy to `upstream` (`host:port`) on a free loopback port, forwarding.
    pub async fn start(upstream: &str) -> Arc<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let proxy = Arc::new(Self {
            addr: listener.local_addr().unwrap(),
            upstream: upstream.to_owned(),
            running: Mutex::new(None),
        });
        proxy.serve(listener).await;
        proxy
    }

    /// A proxy whose server is down from the start; `resume` brings it up.
    pub async fn start_down(upstream: &str) -> Arc<Self> {
        let proxy = Self::start(upstream).await;
        proxy.stop().await;
        proxy
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `url` (of the real server) with its host and port replaced by the proxy's.
    pub fn url_for(&self, url: &str) -> String {
        let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
        let (credentials, rest) = match rest.rsplit_once('@') {
            Some((credentials, rest)) => (format!("{credentials}@"), rest),
            None => (String::new(), rest),
        };
        let path = rest.find(['/', '?']).map_or("", |at| &rest[at..]);
        format!("{scheme}://{credentials}{}{path}", self.addr)
    }

    /// Refuses new connections and cuts every live one.
    pub async fn stop(&self) {
        if let Some(running) = self.running.lock().await.take() {
            running.cut.cancel();
            running.acceptor.abort();
            let _ = running.acceptor.await;
        }
    }

    /// Listens again on the same address.
    pub async fn resume(&self) {
        let listener = TcpListener::bind(self.addr).await.unwrap();
        self.serve(listener).await;
    }

    async fn serve(&self, listener: TcpListener) {
        let cut = CancellationToken::new();
        let upstream = self.upstream.clone();
        let token = cut.clone();
        let acceptor = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let (upstream, token) = (upstream.clone(), token.clone());
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut client, mut server) = (client, server);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        () = token.cancelled() => {}
                    }
                });
            }
        });
        *self.running.lock().await = Some(Running { cut, acceptor });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn urls_point_at_the_proxy() {
        let proxy = TcpProxy::start("127.0.0.1:9").await;
        let port = proxy.addr().port();
        assert_eq!(
            proxy.url_for("amqp://guest:guest@127.0.0.1:5672/vhost"),
            format!("amqp://guest:guest@127.0.0.1:{port}/vhost")
        );
        assert_eq!(
            proxy.url_for("redis://localhost:6379"),
            format!("redis://127.0.0.1:{port}")
        );
        proxy.stop().await;
    }
}
