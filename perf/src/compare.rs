//! Side-by-side runs (in progress).
use anyhow::Result;
/// Options.
#[derive(Debug, clap::Args)]
pub struct CompareOptions {}
/// Runs.
pub fn run(_o: &CompareOptions) -> Result<()> {
    Ok(())
}
