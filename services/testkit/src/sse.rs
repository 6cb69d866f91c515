//! Server-Sent Events as a test reads them: `(event, data)` pairs as they come.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::TestApp;

pub struct Sse {
    events: tokio::sync::mpsc::Receiver<(String, Value)>,
}

impl Sse {
    /// Opens `path` with `token`; it must answer 200.
    pub async fn open(app: &TestApp, path: &str, token: &str) -> Self {
        let mut response = app.call(Method::GET, path, token, None).await;
        assert_eq!(response.status(), StatusCode::OK);
        let (sender, events) = tokio::sync::mpsc::channel(1024);
        tokio::spawn(async move {
            let mut buffer = String::new();
            while let Ok(Some(chunk)) = response.chunk().await {
                buffer.push_str(&String::from_utf8_lossy(&chunk));
                while let Some(end) = buffer.find("\n\n") {
                    let block: String = buffer.drain(..end + 2).collect();
                    let mut event = String::from("message");
                    let mut data = String::new();
                    for line in block.lines() {
                        if let Some(name) = line.strip_prefix("event: ") {
                            event = name.to_owned();
                        } else if let Some(value) = line.strip_prefix("data: ") {
                            data.push_str(value);
                        }
                    }
                    let Ok(data) = serde_json::from_str(&data) else {
                        continue;
                    };
                    if sender.send((event, data)).await.is_err() {
                        return;
                    }
                }
            }
        });
        Self { events }
    }

    /// The next event named `name`, skipping others.
    pub async fn next(&mut self, name: &str) -> Value {
        let wait = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                let (event, data) = self.events.recv().await.expect("the stream ended");
                if event == name {
                    return data;
                }
            }
        });
        wait.await
            .unwrap_or_else(|_| panic!("no {name} event within 10 s"))
    }
}
