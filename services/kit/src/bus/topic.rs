//! Routing-key matching with the semantics of a RabbitMQ topic exchange.
//!
//! Keys and patterns are `.`-separated words; in a pattern `*` stands for
//! exactly one word and `#` for zero or more words. An empty key or pattern
//! has zero words, as in RabbitMQ (`#` matches the empty key).

/// Whether `routing_key` matches the binding `pattern` of a topic exchange.
pub fn topic_matches(pattern: &str, routing_key: &str) -> bool {
    let pattern_words = split_words(pattern);
    let key_words = split_words(routing_key);
    matches_words(&pattern_words, &key_words)
}

fn split_words(text: &str) -> Vec<&str> {
    if text.is_empty() {
        Vec::new()
    } else {
        text.split('.').collect()
    }
}

/// Dynamic programming over (pattern prefix, key prefix): `reachable[j]` says
/// whether the pattern words seen so far can consume exactly the first `j` key
/// words. Linear in the product of the lengths, so no pattern can make it blow up.
fn matches_words(pattern: &[&str], key: &[&str]) -> bool {
    let mut reachable = vec![false; key.len() + 1];
    reachable[0] = true;
    for word in pattern {
        let mut next = vec![false; key.len() + 1];
        match *word {
            "#" => {
                // `#` consumes zero or more words: once a prefix is reachable,
                // every longer prefix is too.
                let mut any = false;
                for (slot, was) in next.iter_mut().zip(reachable.iter()) {
                    any = any || *was;
                    *slot = any;
                }
            }
            "*" => {
                for (slot, was) in next[1..].iter_mut().zip(&reachable) {
                    *slot = *was;
                }
            }
            literal => {
                for ((slot, was), key_word) in next[1..].iter_mut().zip(&reachable).zip(key) {
                    *slot = *was && *key_word == literal;
                }
            }
        }
        reachable = next;
        if !reachable.iter().any(|r| *r) {
            return false;
        }
    }
    reachable[key.len()]
}

#[cfg(test)]
mod tests {
    use super::topic_matches;

    #[test]
    fn literal_patterns_match_only_the_same_key() {
        assert!(topic_matches(
            "ticketing.ticket.closed",
            "ticketing.ticket.closed"
        ));
        assert!(!topic_matches(
            "ticketing.ticket.closed",
            "ticketing.ticket.opened"
        ));
        assert!(!topic_matches(
            "ticketing.ticket",
            "ticketing.ticket.closed"
        ));
        assert!(!topic_matches(
            "ticketing.ticket.closed",
            "ticketing.ticket"
        ));
    }

    #[test]
    fn star_matches_exactly_one_word() {
        assert!(topic_matches(
            "ticketing.*.closed",
            "ticketing.ticket.closed"
        ));
        assert!(topic_matches("*.*.*", "a.b.c"));
        assert!(!topic_matches("ticketing.*", "ticketing.ticket.closed"));
        assert!(!topic_matches("ticketing.*.closed", "ticketing.closed"));
        assert!(!topic_matches("*", ""));
        assert!(topic_matches("*", "word"));
        // An empty word is still a word.
        assert!(topic_matches("a.*.c", "a..c"));
    }

    #[test]
    fn hash_matches_zero_or_more_words() {
        assert!(topic_matches("#", ""));
        assert!(topic_matches("#", "a"));
        assert!(topic_matches("#", "a.b.c"));
        assert!(topic_matches("ticketing.#", "ticketing"));
        assert!(topic_matches("ticketing.#", "ticketing.ticket.closed"));
        assert!(!topic_matches("ticketing.#", "routing.task.created"));
        assert!(topic_matches("#.closed", "ticketing.ticket.closed"));
        assert!(topic_matches("#.closed", "closed"));
        assert!(!topic_matches("#.closed", "ticketing.ticket.opened"));
        assert!(topic_matches("a.#.z", "a.z"));
        assert!(topic_matches("a.#.z", "a.b.c.z"));
        assert!(!topic_matches("a.#.z", "a.b.c"));
    }

    #[test]
    fn star_and_hash_combine() {
        assert!(topic_matches("*.ticket.#", "ticketing.ticket"));
        assert!(topic_matches("*.ticket.#", "ticketing.ticket.closed.late"));
        assert!(!topic_matches("*.ticket.#", "ticket.closed"));
        assert!(topic_matches("#.*", "a"));
        assert!(!topic_matches("#.*", ""));
        assert!(topic_matches("*.#.*", "a.b"));
        assert!(!topic_matches("*.#.*", "a"));
        assert!(topic_matches("#.#", ""));
        assert!(topic_matches("#.b.#", "a.b.c"));
        assert!(topic_matches("#.b.#", "b"));
        assert!(!topic_matches("#.b.#", "a.c"));
    }

    #[test]
    fn empty_pattern_matches_only_the_empty_key() {
        assert!(topic_matches("", ""));
        assert!(!topic_matches("", "a"));
        assert!(!topic_matches("a", ""));
    }

    #[test]
    fn many_hashes_stay_fast() {
        let pattern = vec!["#"; 64].join(".") + ".z";
        let key = vec!["a"; 64].join(".");
        assert!(!topic_matches(&pattern, &key));
        assert!(topic_matches(&pattern, &(key + ".z")));
    }
}
