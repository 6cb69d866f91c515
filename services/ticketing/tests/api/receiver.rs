//! A partner's system or an SMS gateway on this machine: records every
//! request and answers as scripted, then 200.

use std::{
    collections::VecDeque,
    sync::{Arc, Mutex},
    time::Duration,
};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;

use crate::helpers::until;

/// How the receiver answers the next request.
#[derive(Clone, Copy, Debug)]
pub enum Answer {
    Status(u16),
    RetryAfter(u16, u64),
    /// A status with a JSON body.
    Json(u16, &'static str),
    /// Never answers (within any test's time).
    Hang,
}

#[derive(Clone, Debug)]
pub struct Received {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

#[derive(Default)]
struct Log {
    script: VecDeque<Answer>,
    received: Vec<Received>,
}

/// A partner's system or a gateway: records every request and answers as scripted, then 200.
pub struct Receiver {
    pub url: String,
    log: Arc<Mutex<Log>>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    pub async fn start(script: &[Answer]) -> Self {
        let log = Arc::new(Mutex::new(Log {
            script: script.iter().copied().collect(),
            received: Vec::new(),
        }));
        let state = web::Data::new(log.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(answer))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/hotline"),
            log,
            server: handle,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().received.clone()
    }

    /// Waits for `count` requests: all of them.
    pub async fn wait_for(&self, count: usize) -> Vec<Received> {
        until(&format!("{count} webhook requests"), async || {
            self.received().len() >= count
        })
        .await;
        self.received()
    }

    /// The event types received, in order.
    pub fn types(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| {
                serde_json::from_str::<Value>(&r.body).unwrap()["type"]
                    .as_str()
                    .unwrap()
                    .to_owned()
            })
            .collect()
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

async fn answer(
    log: web::Data<Arc<Mutex<Log>>>,
    request: HttpRequest,
    body: String,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let next = {
        let mut log = log.lock().unwrap();
        log.received.push(Received {
            id: header("webhook-id"),
            timestamp: header("webhook-timestamp"),
            signature: header("webhook-signature"),
            body,
        });
        log.script.pop_front()
    };
    match next {
        None => HttpResponse::Ok().body("thanks"),
        Some(Answer::Status(code)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .body("not now")
        }
        Some(Answer::RetryAfter(code, seconds)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .insert_header(("Retry-After", seconds.to_string()))
                .finish()
        }
        Some(Answer::Json(code, body)) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .content_type("application/json")
                .body(body)
        }
        Some(Answer::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
    }
}
