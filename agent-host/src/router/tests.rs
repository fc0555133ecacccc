use super::*;

fn d(text: &str, prev: Option<Target>, a: Result<(), Unavailable>, l: Result<(), Unavailable>) -> Decision {
    decide(&builtin_rules(), &Features::of(text, prev), a, l, &RoutingConfig::default())
}

#[test]
fn actions_and_cluster_questions_go_to_claude_conversation_to_the_local_model() {
    assert_eq!(d("stop vm 101", None, Ok(()), Ok(())).target, Some(Target::Anthropic));
    assert_eq!(d("stop vm 101", None, Ok(()), Ok(())).rule, "action");
    assert_eq!(d("which VMs are running on pve2?", None, Ok(()), Ok(())).rule, "cluster");
    let chat = d("tell me a joke about backups", None, Ok(()), Ok(()));
    assert_eq!((chat.target, chat.rule.as_str()), (Some(Target::Local), "conversation"));
    assert_eq!(d("and the other one?", Some(Target::Anthropic), Ok(()), Ok(())).rule, "follow-up");
    assert_eq!(d("ask Claude to write me a poem", None, Ok(()), Ok(())).target, Some(Target::Anthropic));
}

#[test]
fn an_outage_rate_limit_or_budget_sends_conversation_local_with_a_notice_but_never_an_action() {
    for why in [
        Unavailable::RateLimited("retry in 60 s".into()),
        Unavailable::Down("HTTP 529".into()),
        Unavailable::OverBudget,
    ] {
        let q = d("what's the load on pve1?", None, Err(why.clone()), Ok(()));
        assert_eq!(q.target, Some(Target::Local));
        assert!(!q.tools);
        assert!(q.notice.is_some(), "{why:?}");
        let act = d("reboot vm 204", None, Err(why), Ok(()));
        assert_eq!(act.target, None, "an action never goes to a provider without tools");
        assert!(act.notice.as_deref().is_some_and(|n| n.contains("Actions need a model with tools")));
    }
    // No key at all: silent fallback for conversation.
    let q = d("which guests are stopped?", None, Err(Unavailable::NotConfigured), Ok(()));
    assert_eq!((q.target, q.notice), (Some(Target::Local), None));
}

#[test]
fn a_local_outage_sends_local_work_to_claude_when_allowed() {
    let q = d("hello there", None, Ok(()), Err(Unavailable::Down("connection refused".into())));
    assert_eq!(q.target, Some(Target::Anthropic));
    assert!(q.notice.is_some());
    let cfg = RoutingConfig { claude_fallback: false, ..Default::default() };
    let q =
        decide(&builtin_rules(), &Features::of("hello there", None), Ok(()), Err(Unavailable::Down("x".into())), &cfg);
    assert_eq!(q.target, None);
}

#[test]
fn rules_are_data_evaluated_in_order_and_cannot_send_actions_to_a_toolless_model() {
    let rules = vec![
        Rule {
            id: "ssh-claude".into(),
            when: When { tool: Some("run_node_command".into()), ..When::default() },
            route: Target::Anthropic,
            reason: "always Claude for SSH commands".into(),
        },
        Rule { id: "all-local".into(), when: When::default(), route: Target::Local, reason: "cheap".into() },
    ];
    validate(&rules).expect("valid");
    let cfg = RoutingConfig::default();
    let f = Features::of("ssh into pve1 and show me dmesg", None);
    assert_eq!(decide(&rules, &f, Ok(()), Ok(()), &cfg).rule, "ssh-claude");
    let f = Features::of("stop vm 101", None);
    let dd = decide(&rules, &f, Ok(()), Ok(()), &cfg);
    assert_eq!((dd.rule.as_str(), dd.target, dd.tools), ("all-local", Some(Target::Anthropic), true));
    let bad = vec![Rule {
        id: "x".into(),
        when: When { pattern: Some("(".into()), ..When::default() },
        route: Target::Local,
        reason: String::new(),
    }];
    assert!(validate(&bad).is_err());
}

#[test]
fn the_clusters_own_node_and_guest_names_count_as_entities() {
    let names = vec!["atlas".to_string(), "media-box".to_string()];
    let f = Features::with_names("restart atlas please", None, &names);
    assert!(f.action && f.cluster);
    assert!(!Features::of("restart atlas please", None).cluster);
    assert!(Features::with_names("is media-box up?", None, &names).cluster);
}
