//! Reading the Coqui `trainer` console log (what XTTS v2 GPT fine-tuning prints) into job
//! progress. The format, from `coqui-ai/Trainer` `trainer/logging/console_logger.py` and
//! `trainer/io.py` (bold/underline ANSI codes around the headers, stripped here):
//!
//! ```text
//!  > EPOCH: 1/10
//!  --> /runs/GPT_XTTS_FT-…
//!  > TRAINING (2024-08-05 17:17:08)
//!    --> TIME: 2024-08-05 17:17:10 -- STEP: 50/200 -- GLOBAL_STEP: 250
//!      | > loss_text_ce: 0.0332  (0.0335)
//!      | > loss_mel_ce: 4.7347  (4.7012)
//!      | > loss: 0.0567  (0.0571)
//!      | > step_time: 0.9667  (0.9666)
//!  > EVALUATION
//!   --> EVAL PERFORMANCE
//!      | > avg_loss: 4.7043 (+0)
//!  > BEST MODEL : /runs/GPT_XTTS_FT-…/best_model_250.pth
//! ```
//!
//! The trainer prints no ETA; it is estimated from the average step time and the steps left.

use serde::{Deserialize, Serialize};

/// Progress of a training run as far as its log tells.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Progress {
    /// Current epoch as the trainer counts it (0-based, `EPOCH: e/max`).
    pub epoch: Option<u32>,
    pub max_epoch: Option<u32>,
    /// Step within the epoch and steps per epoch (`STEP: s/n`).
    pub step: Option<u32>,
    pub max_step: Option<u32>,
    pub global_step: Option<u64>,
    /// Last training loss and its running average.
    pub loss: Option<f64>,
    pub avg_loss: Option<f64>,
    /// Last evaluation loss (`avg_loss` after `EVAL PERFORMANCE`).
    pub eval_loss: Option<f64>,
    /// Average seconds per step.
    pub step_time: Option<f64>,
    /// Estimated seconds left.
    pub eta_secs: Option<f64>,
    /// Last checkpoint or best model written.
    pub checkpoint: Option<String>,
    #[serde(skip)]
    in_eval: bool,
}

/// Remove ANSI escape sequences and surrounding blanks.
pub fn plain(line: &str) -> String {
    mcp_common::untrusted::sanitize(line).0.trim().to_string()
}

fn fraction(s: &str) -> Option<(u64, u64)> {
    let (a, b) = s.trim().split_once('/')?;
    Some((a.trim().parse().ok()?, b.split_whitespace().next()?.parse().ok()?))
}

/// `name: value  (average)` after `| > `.
fn metric(rest: &str) -> Option<(&str, f64, Option<f64>)> {
    let (name, value) = rest.split_once(':')?;
    let mut parts = value.split_whitespace();
    let v: f64 = parts.next()?.parse().ok()?;
    let avg = parts.next().and_then(|p| p.trim_matches(|c| c == '(' || c == ')').parse().ok());
    Some((name.trim(), v, avg))
}

impl Progress {
    /// Take one log line into account.
    pub fn feed(&mut self, raw: &str) {
        let line = plain(raw);
        if let Some(rest) = line.strip_prefix("> EPOCH:") {
            if let Some((e, m)) = fraction(rest) {
                self.epoch = u32::try_from(e).ok();
                self.max_epoch = u32::try_from(m).ok();
                // A new epoch has done no step yet.
                self.step = None;
            }
            self.in_eval = false;
        } else if line.starts_with("> TRAINING") {
            self.in_eval = false;
        } else if line.starts_with("> EVALUATION") || line.starts_with("--> EVAL PERFORMANCE") {
            self.in_eval = true;
        } else if line.starts_with("--> TIME:") || line.starts_with("--> STEP:") {
            if line.contains("GLOBAL_STEP:") {
                self.in_eval = false;
                for part in line.split("--") {
                    let part = part.trim().trim_start_matches('>').trim();
                    if let Some(r) = part.strip_prefix("STEP:")
                        && let Some((s, n)) = fraction(r)
                    {
                        self.step = u32::try_from(s).ok();
                        self.max_step = u32::try_from(n).ok();
                    } else if let Some(r) = part.strip_prefix("GLOBAL_STEP:") {
                        self.global_step = r.trim().parse().ok();
                    }
                }
            }
        } else if let Some(rest) = line.strip_prefix("| >") {
            if let Some((name, v, avg)) = metric(rest) {
                match (self.in_eval, name) {
                    (false, "loss") => {
                        self.loss = Some(v);
                        self.avg_loss = avg.or(Some(v));
                    }
                    (false, "step_time") => self.step_time = avg.or(Some(v)),
                    (true, "avg_loss") => self.eval_loss = Some(v),
                    _ => {}
                }
            }
        } else if let Some(p) = line.strip_prefix("> BEST MODEL :").or_else(|| line.strip_prefix("> CHECKPOINT :")) {
            self.checkpoint = Some(p.trim().to_string());
        }
        self.eta_secs = self.estimate();
    }

    /// Steps done in the current epoch: the trainer logs step `s` (0-based) after running it.
    fn done_in_epoch(&self) -> u32 {
        self.step.map_or(0, |s| s + 1)
    }

    /// Steps left × average step time.
    fn estimate(&self) -> Option<f64> {
        let (e, me, ms, t) = (self.epoch?, self.max_epoch?, self.max_step?, self.step_time?);
        let epochs_after = u64::from(me.saturating_sub(e).saturating_sub(1));
        let left = epochs_after * u64::from(ms) + u64::from(ms.saturating_sub(self.done_in_epoch()));
        Some((left as f64 * t * 10.0).round() / 10.0)
    }

    /// Fraction done, 0..1, when the log says enough.
    pub fn fraction(&self) -> Option<f64> {
        let (e, me, ms) = (self.epoch?, self.max_epoch?, self.max_step.unwrap_or(1).max(1));
        if me == 0 {
            return None;
        }
        let s = self.done_in_epoch().min(ms);
        Some(((f64::from(e) + f64::from(s) / f64::from(ms)) / f64::from(me)).clamp(0.0, 1.0))
    }

    /// One line for humans.
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(e), Some(m)) = (self.epoch, self.max_epoch) {
            parts.push(format!("epoch {e}/{m}"));
        }
        if let (Some(s), Some(m)) = (self.step, self.max_step) {
            parts.push(format!("step {s}/{m}"));
        }
        if let Some(l) = self.loss {
            parts.push(format!("loss {l:.4}"));
        }
        if let Some(l) = self.eval_loss {
            parts.push(format!("eval loss {l:.4}"));
        }
        if let Some(eta) = self.eta_secs {
            parts.push(format!("ETA {}", human_secs(eta)));
        }
        if parts.is_empty() { "starting".into() } else { parts.join(", ") }
    }
}

pub fn human_secs(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_coqui_console_log_becomes_epoch_step_loss_and_eta() {
        let log = "\n\x1b[4m\x1b[1m > EPOCH: 1/3\x1b[0m\n --> /runs/x\n\n\x1b[1m > TRAINING (2024-08-05 17:17:08) \x1b[0m\n\
                   \x1b[1m   --> TIME: 2024-08-05 17:17:10 -- STEP: 50/200 -- GLOBAL_STEP: 250\x1b[0m\n\
                        | > loss_text_ce: 0.0332  (0.0335)\n     | > loss: 0.0567  (0.0571)\n\
                        | > current_lr: 5e-06 \n     | > step_time: 0.5  (0.4)\n\
                   \x1b[1m > EVALUATION \x1b[0m\n  \x1b[1m--> EVAL PERFORMANCE\x1b[0m\n\
                        | > avg_loss:\x1b[92m 4.70 \x1b[0m(+0)\n > BEST MODEL : /runs/x/best_model_250.pth\n";
        let mut p = Progress::default();
        for l in log.lines() {
            p.feed(l);
        }
        assert_eq!(
            (p.epoch, p.max_epoch, p.step, p.max_step, p.global_step),
            (Some(1), Some(3), Some(50), Some(200), Some(250))
        );
        assert_eq!((p.loss, p.avg_loss, p.step_time, p.eval_loss), (Some(0.0567), Some(0.0571), Some(0.4), Some(4.70)));
        // Steps 0..=50 done: 149 left in this epoch + 200 in the last one, 0.4 s each.
        assert_eq!(p.eta_secs, Some(139.6));
        assert_eq!(p.fraction(), Some((1.0 + 51.0 / 200.0) / 3.0));
        assert_eq!(p.checkpoint.as_deref(), Some("/runs/x/best_model_250.pth"));
        assert!(p.summary().contains("epoch 1/3") && p.summary().contains("ETA 2 min 20 s"));
    }
}
