//! Progress reporting: indicatif bars (images, bytes, rate) when stderr
//! is a terminal, plain `tracing` log lines otherwise.

use std::io::IsTerminal;
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

/// A cheap-to-clone progress reporter.
#[derive(Clone)]
pub struct Progress {
    bars: Option<Arc<Bars>>,
}

struct Bars {
    _multi: MultiProgress,
    images: ProgressBar,
    bytes: ProgressBar,
}

impl Progress {
    /// Bars on a terminal, log lines otherwise.
    pub fn auto(total_images: u64) -> Self {
        if std::io::stderr().is_terminal() {
            Self::bars(total_images)
        } else {
            Self::hidden()
        }
    }

    /// No bars: only log lines.
    pub fn hidden() -> Self {
        Progress { bars: None }
    }

    fn bars(total_images: u64) -> Self {
        let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
        let images = multi.add(ProgressBar::new(total_images));
        images.set_style(
            ProgressStyle::with_template("images {pos}/{len} [{bar:30}] {msg}")
                .expect("valid template")
                .progress_chars("=> "),
        );
        let bytes = multi.add(ProgressBar::new_spinner());
        bytes.set_style(
            ProgressStyle::with_template("{spinner} {bytes} copied, {binary_bytes_per_sec}")
                .expect("valid template"),
        );
        bytes.enable_steady_tick(std::time::Duration::from_millis(200));
        Progress {
            bars: Some(Arc::new(Bars {
                _multi: multi,
                images,
                bytes,
            })),
        }
    }

    /// An image starts.
    pub fn image_started(&self, reference: &str, source: &str) {
        match &self.bars {
            Some(b) => b.images.set_message(reference.to_string()),
            None => tracing::info!("bundling {reference} from {source}"),
        }
    }

    /// An image is done.
    pub fn image_done(&self, reference: &str, blobs: usize, bytes: u64) {
        match &self.bars {
            Some(b) => b.images.inc(1),
            None => tracing::info!("bundled {reference}: {blobs} blobs, {bytes} bytes"),
        }
    }

    /// Bytes copied.
    pub fn bytes(&self, n: u64) {
        if let Some(b) = &self.bars {
            b.bytes.inc(n);
        }
    }

    /// Remove the bars.
    pub fn finish(&self) {
        if let Some(b) = &self.bars {
            b.images.finish_and_clear();
            b.bytes.finish_and_clear();
        }
    }
}
