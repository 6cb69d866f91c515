//! Loads a population of customers into identity's PostgreSQL schema through
//! identity's own bulk import: `make seed` (1,000,000 by default,
//! HOTLINE_BENCH_CUSTOMERS to change). Idempotent: tops up to the target count.

use std::time::Instant;

use hotline_system_tests::{bench_config, env_number, population};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let target = env_number("HOTLINE_BENCH_CUSTOMERS", 1_000_000);
    let config = bench_config()?;
    println!("topping up to {target} customers");
    let started = Instant::now();
    let existing = population::seed(&config, target, |next| {
        if next.is_multiple_of(100_000) || next == target {
            println!("{next} customers");
        }
    })
    .await?;
    let added = target.saturating_sub(existing);
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{existing} were there; {added} added in {seconds:.1}s ({:.0}/s)",
        added as f64 / seconds
    );
    Ok(())
}
