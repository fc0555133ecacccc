//! Features of a message the rules test: is it an action, about the live cluster, a follow-up, which tools
//! it names. Word lists cover English plus common German, French and Spanish verbs, and tolerate one
//! swapped, missing or extra letter in a verb ("stpo", "restrat", "shutdwon").

use std::sync::LazyLock;

use regex::Regex;

use super::Target;
use super::lexicon::*;

/// What the rules look at.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    /// The message, lower-case.
    pub text: String,
    pub words: Vec<String>,
    pub action: bool,
    pub cluster: bool,
    pub follow_up: bool,
    /// Who answered the previous message of the session.
    pub previous: Option<Target>,
}

static NODE_NAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(pve\d*[a-z0-9-]*|proxmox\d+|node\s*\d+|nuc\d*|hv\d+)\b").expect("static regex"));
static VMID: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^[1-9]\d{2,5}$").expect("static regex"));
static HOSTNAME: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b[a-z][a-z0-9]*-[a-z0-9-]*[0-9a-z]\b|\b[a-z]+\d+\b").expect("static regex"));
static IP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"\b\d{1,3}(\.\d{1,3}){3}\b").expect("static regex"));
fn tokens(text: &str) -> Vec<String> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '-' || c == '\'' || c == '.'))
        .map(|w| w.trim_matches(|c| c == '.' || c == '\'' || c == '-'))
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// One swapped pair, or one missing or extra letter (no substitutions: "smart" is not "start").
fn near(word: &str, verb: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (word.chars().collect(), verb.chars().collect());
    if a == b {
        return true;
    }
    if b.len() < 4 {
        return false;
    }
    if a.len() == b.len() {
        let diff: Vec<usize> = (0..a.len()).filter(|&i| a[i] != b[i]).collect();
        return diff.len() == 2 && diff[1] == diff[0] + 1 && a[diff[0]] == b[diff[1]] && a[diff[1]] == b[diff[0]];
    }
    let (long, short) = if a.len() > b.len() { (&a, &b) } else { (&b, &a) };
    if long.len() != short.len() + 1 {
        return false;
    }
    (0..long.len()).any(|skip| long.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| c).eq(short.iter()))
}

fn has_phrase(text: &str, words: &[String], phrase: &str) -> bool {
    if phrase.contains(' ') {
        return format!(" {} ", words.join(" ")).contains(&format!(" {} ", phrase.trim())) || text.contains(phrase);
    }
    words.iter().any(|w| w == phrase)
}

impl Features {
    /// Whole-word (or whole-phrase) match, case-insensitive.
    pub fn contains_phrase(&self, phrase: &str) -> bool {
        has_phrase(&self.text, &self.words, &phrase.to_lowercase())
    }

    /// Whether the message asks for what `tool` does.
    pub fn mentions_tool(&self, tool: &str) -> bool {
        let tool = tool.to_lowercase();
        if self.text.contains(&tool) || self.contains_phrase(&tool.replace('_', " ")) {
            return true;
        }
        let triggers: &[&str] = match tool.as_str() {
            "run_node_command" => COMMAND_WORDS,
            "node_temperatures" => &["temperature", "temperatures", "temps", "hot", "sensors", "thermal"],
            "list_backups" | "backup_guest" => &["backup", "backups", "vzdump", "pbs"],
            "create_snapshot" | "list_snapshots" | "rollback_snapshot" | "delete_snapshot" => {
                &["snapshot", "snapshots"]
            }
            "migrate_guest" => &["migrate", "migration", "move"],
            "download_file" => &["download", "iso", "template"],
            "restart_service" => &["service", "systemctl", "daemon"],
            _ => &[],
        };
        triggers.iter().any(|t| self.contains_phrase(t))
    }

    /// Features of `text`, given who answered the session's previous message.
    pub fn of(text: &str, previous: Option<Target>) -> Features {
        Self::with_names(text, previous, &[])
    }

    /// [`Features::of`], also recognising this cluster's node and guest names (lower-case) as entities.
    pub fn with_names(text: &str, previous: Option<Target>, names: &[String]) -> Features {
        let lower = text.to_lowercase();
        let words = tokens(&lower);
        let phrase = |p: &str| has_phrase(&lower, &words, p);
        let is_id = |w: &str| VMID.is_match(w);
        let specific_guest = words.iter().enumerate().any(|(i, w)| {
            is_id(w)
                && i > 0
                && (GUEST_NOUNS.contains(&words[i - 1].as_str()) || VERBS.contains(&words[i - 1].as_str()))
        }) || words.iter().any(|w| {
            w.strip_prefix("vm")
                .or_else(|| w.strip_prefix("ct"))
                .is_some_and(|d| d.len() >= 3 && d.chars().all(|c| c.is_ascii_digit()))
        });
        let bare_number = words.iter().any(|w| is_id(w));
        let node = NODE_NAME.is_match(&lower);
        let ip = IP.is_match(&lower);
        let app = words.iter().any(|w| KNOWN_APPS.contains(&w.as_str()));
        let named_host = HOSTNAME.find_iter(&lower).any(|m| {
            m.as_str().chars().any(|c| c.is_ascii_digit()) && m.as_str().len() >= 4 && !NOT_HOSTS.contains(&m.as_str())
        });
        // Storage ids such as local-zfs, local-lvm, pbs-nas.
        let storage_id = words.iter().any(|w| {
            w.contains('-')
                && ["local", "pbs", "nfs", "ceph", "zfs", "lvm", "nas", "backup"]
                    .iter()
                    .any(|p| w.split('-').any(|x| x == *p))
        });
        let parts: Vec<&str> = words.iter().flat_map(|w| w.split('-')).collect();
        // Files and projects: README.md, /etc/pve/storage.cfg, "the infra project".
        let file = words.iter().any(|w| {
            w == "readme"
                || w.starts_with('/')
                || w.rsplit_once('.').is_some_and(|(stem, ext)| {
                    !stem.is_empty()
                        && ["md", "conf", "cfg", "yaml", "yml", "toml", "json", "log", "sh", "py", "rs", "txt"]
                            .contains(&ext)
                })
        }) || (phrase("project") || phrase("repo") || phrase("repository"))
            && !lower.contains("project management");
        let known = names.iter().any(|n| n.len() >= 3 && has_phrase(&lower, &words, n));
        let specific = specific_guest || node || ip || named_host || app || storage_id || file || known;
        let guest_noun = parts.iter().any(|w| GUEST_NOUNS.contains(w));
        let infra_noun = parts.iter().any(|w| INFRA_NOUNS.contains(w));
        let creative = CREATIVE.iter().any(|k| lower.contains(k));
        let knowledge = (KNOWLEDGE.iter().any(|k| lower.contains(k)) && !lower.starts_with("can you")) || creative;
        // "My backup storage is …", "always snapshot before …": a statement to remember, not a request.
        let statement = !crate::memory::extract::from_user_message(text).is_empty();
        let deictic = [
            "my ",
            "our ",
            "the cluster",
            "this cluster",
            "all ",
            "every ",
            "any ",
            "currently",
            "right now",
            "at the moment",
            "today",
            "tonight",
            "last night",
            "this week",
            "yesterday",
            "do we",
            "we have",
        ]
        .iter()
        .any(|d| lower.contains(d));
        let listing = QUESTION_CUES.iter().any(|q| phrase(q));
        let state = words.iter().any(|w| STATE_WORDS.contains(&w.as_str()));

        // A verb, exact or with one slip of the keyboard, or a phrasal verb.
        let verb = words.iter().any(|w| {
            VERBS.contains(&w.as_str())
                || (!NOT_TYPOS.contains(&w.as_str()) && w.chars().count() >= 4 && VERBS.iter().any(|v| near(w, v)))
        }) || PHRASAL.iter().any(|p| lower.contains(p));
        let target = specific || bare_number || guest_noun || infra_noun;
        let command =
            COMMAND_WORDS.iter().any(|c| phrase(c)) && (phrase("run") || phrase("execute") || phrase("ssh") || node);
        let general = knowledge && !(specific_guest || node || file);
        let action = !statement && ((verb && target && !general) || command);
        let cluster = !statement
            && (action
                || (specific && !general)
                || (bare_number && state && !knowledge)
                || (!knowledge && (guest_noun || infra_noun) && (state || deictic || listing)));

        let small_talk = SMALL_TALK.iter().any(|s| {
            let t = lower.trim_end_matches(['!', '.', ' ']);
            t == *s || t.starts_with(&format!("{s} ")) || t.starts_with(&format!("{s},"))
        });
        let summary =
            ["summar", "recap", "tl;dr", "tldr", "sum up", "zusammenfass", "résum"].iter().any(|s| lower.contains(s));
        let follows = FOLLOW_UP_STARTS.iter().any(|s| lower.starts_with(s))
            || REFERENCES.iter().any(|r| phrase(r))
            || words.len() <= 3;
        let follow_up = previous.is_some() && words.len() <= 12 && follows && !small_talk && !summary && !knowledge;
        Features { text: lower, words, action, cluster, follow_up, previous }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_are_one_swap_or_one_letter_off() {
        assert!(near("stpo", "stop"));
        assert!(near("restrat", "restart"));
        assert!(near("shutdwon", "shutdown"));
        assert!(near("rebot", "reboot"));
        assert!(!near("smart", "start"));
    }

    #[test]
    fn actions_need_a_target_and_general_questions_are_not_actions() {
        assert!(Features::of("stop vm 101", None).action);
        assert!(Features::of("pls restrat the plex container", None).action);
        assert!(Features::of("Starte bitte VM 204 neu", None).action);
        assert!(!Features::of("how do I stop a VM in Proxmox?", None).action);
        assert!(!Features::of("tell me a joke", None).action);
    }
}
