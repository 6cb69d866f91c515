//! The shared cache: Redis through a reconnecting connection manager.

use std::time::Duration;

use async_trait::async_trait;
use redis::{AsyncCommands, aio::ConnectionManager};

use super::{CacheBackend, CacheError};

#[derive(Clone)]
pub struct RedisCache {
    connection: ConnectionManager,
}

impl RedisCache {
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(|e| CacheError(e.to_string()))?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_millis(500)));
        let connection = ConnectionManager::new_with_config(client, config)
            .await
            .map_err(|e| CacheError(e.to_string()))?;
        Ok(Self { connection })
    }
}

fn error(e: redis::RedisError) -> CacheError {
    CacheError(e.to_string())
}

#[async_trait]
impl CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let mut connection = self.connection.clone();
        connection.get(key).await.map_err(error)
    }

    async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let seconds = ttl.as_secs().max(1);
        let _: () = connection
            .set_ex(key, value, seconds)
            .await
            .map_err(error)?;
        Ok(())
    }

    async fn delete(&self, keys: &[String]) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _: () = connection.del(keys).await.map_err(error)?;
        Ok(())
    }

    async fn check(&self) -> Result<(), CacheError> {
        let mut connection = self.connection.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut connection)
            .await
            .map_err(error)?;
        Ok(())
    }
}
