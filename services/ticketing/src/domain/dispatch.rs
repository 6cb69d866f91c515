//! Automatic dispatch: which rules apply to an order, in which order, and
//! whom a rule picks among the assignees open and with room now.

use std::{cmp::Ordering, collections::HashSet};

use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use hotline_kit::calendar::BusinessHours;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// The lowest share of its capacity in use; ties to the longest since its last order.
    LeastLoaded,
    /// The longest since its last order: every candidate in turn.
    RoundRobin,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::LeastLoaded => "least_loaded",
            Self::RoundRobin => "round_robin",
        }
    }

    pub fn parse(value: &str) -> Option<Self> {
        [Self::LeastLoaded, Self::RoundRobin]
            .into_iter()
            .find(|strategy| strategy.as_str() == value)
    }
}

/// What a rule matches on an order (absent: anything) and how it picks.
#[derive(Clone, Debug)]
pub struct Rule {
    pub id: Uuid,
    pub precedence: i32,
    pub region_path: Option<String>,
    pub type_key: Option<String>,
    pub category_path: Option<String>,
    pub skill: Option<String>,
    pub strategy: Strategy,
    /// Only these assignees; empty: those covering the order's region.
    pub candidates: Vec<Uuid>,
    pub accept_timeout: Duration,
}

/// What of an order the rules look at.
#[derive(Clone, Copy, Debug)]
pub struct Order<'a> {
    pub region_path: &'a str,
    pub category_path: &'a str,
    pub type_key: &'a str,
}

/// An active assignee as dispatch sees it.
#[derive(Clone, Debug)]
pub struct Candidate {
    pub id: Uuid,
    pub skills: Vec<String>,
    /// Region paths it covers, each with its subtree.
    pub regions: Vec<String>,
    pub capacity: i32,
    pub open_orders: i32,
    pub last_dispatched_at: Option<DateTime<Utc>>,
    pub hours: Option<BusinessHours>,
}

/// A path's depth: `/bj/bj_cy/` is 2.
fn depth(path: Option<&str>) -> usize {
    path.map_or(0, |p| p.matches('/').count().saturating_sub(1))
}

impl Rule {
    pub fn matches(&self, order: Order<'_>) -> bool {
        self.region_path
            .as_deref()
            .is_none_or(|path| order.region_path.starts_with(path))
            && self
                .category_path
                .as_deref()
                .is_none_or(|path| order.category_path.starts_with(path))
            && self
                .type_key
                .as_deref()
                .is_none_or(|key| key == order.type_key)
    }

    /// Most specific first: the deepest region, then the deepest category,
    /// then a type, then a skill, then the lowest precedence.
    fn before(&self, other: &Self) -> Ordering {
        let key = |rule: &Self| {
            (
                depth(rule.region_path.as_deref()),
                depth(rule.category_path.as_deref()),
                rule.type_key.is_some(),
                rule.skill.is_some(),
            )
        };
        key(other)
            .cmp(&key(self))
            .then(self.precedence.cmp(&other.precedence))
            .then(self.id.cmp(&other.id))
    }

    fn eligible(&self, candidate: &Candidate, order: Order<'_>) -> bool {
        let chosen = if self.candidates.is_empty() {
            candidate
                .regions
                .iter()
                .any(|path| order.region_path.starts_with(path.as_str()))
        } else {
            self.candidates.contains(&candidate.id)
        };
        chosen
            && self
                .skill
                .as_ref()
                .is_none_or(|skill| candidate.skills.contains(skill))
    }
}

/// Least-loaded's order: the lower share of capacity in use, then the
/// longer since the last order (never first), then the id.
fn less_loaded(a: &Candidate, b: &Candidate) -> Ordering {
    (i64::from(a.open_orders) * i64::from(b.capacity))
        .cmp(&(i64::from(b.open_orders) * i64::from(a.capacity)))
        .then_with(|| longer_idle(a, b))
}

fn longer_idle(a: &Candidate, b: &Candidate) -> Ordering {
    a.last_dispatched_at
        .cmp(&b.last_dispatched_at)
        .then(a.id.cmp(&b.id))
}

/// What the rules decide for an order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Choice {
    /// Offer it to this assignee, chosen by this rule.
    Assign { assignee: Uuid, rule: Uuid },
    /// Every candidate with room is closed now; the first opens then.
    OpensAt(DateTime<Utc>),
    /// Rules apply but none has a candidate with room.
    NoCandidate,
    /// No rule applies to the order.
    NoRule,
}

/// The applicable rules, most specific first.
pub fn applicable<'r>(rules: &'r [Rule], order: Order<'_>) -> Vec<&'r Rule> {
    let mut applicable: Vec<&Rule> = rules.iter().filter(|rule| rule.matches(order)).collect();
    applicable.sort_by(|a, b| a.before(b));
    applicable
}

/// Tries the applicable rules from the most specific; the first with a
/// candidate open now, with room and not `excluded`, wins.
pub fn choose(
    rules: &[Rule],
    order: Order<'_>,
    candidates: &[Candidate],
    excluded: &HashSet<Uuid>,
    now: DateTime<Utc>,
    center: Tz,
) -> Choice {
    let rules = applicable(rules, order);
    if rules.is_empty() {
        return Choice::NoRule;
    }
    let mut opens_at: Option<DateTime<Utc>> = None;
    for rule in rules {
        let mut open = Vec::new();
        for candidate in candidates {
            if excluded.contains(&candidate.id)
                || candidate.open_orders >= candidate.capacity
                || !rule.eligible(candidate, order)
            {
                continue;
            }
            match &candidate.hours {
                Some(hours) if !hours.is_open(now, center) => {
                    if let Some(at) = hours.add_business(now, Duration::zero(), center) {
                        opens_at = Some(opens_at.map_or(at, |earliest| earliest.min(at)));
                    }
                }
                Some(_) | None => open.push(candidate),
            }
        }
        let picked = match rule.strategy {
            Strategy::LeastLoaded => open.into_iter().min_by(|a, b| less_loaded(a, b)),
            Strategy::RoundRobin => open.into_iter().min_by(|a, b| longer_idle(a, b)),
        };
        if let Some(candidate) = picked {
            return Choice::Assign {
                assignee: candidate.id,
                rule: rule.id,
            };
        }
    }
    opens_at.map_or(Choice::NoCandidate, Choice::OpensAt)
}

#[cfg(test)]
mod tests {
    use hotline_kit::calendar::{Day, OpeningHours};

    use super::*;

    const ZONE: Tz = chrono_tz::Asia::Shanghai;

    fn rule(n: u128, region: Option<&str>, strategy: Strategy) -> Rule {
        Rule {
            id: Uuid::from_u128(n),
            precedence: 0,
            region_path: region.map(str::to_owned),
            type_key: None,
            category_path: None,
            skill: None,
            strategy,
            candidates: Vec::new(),
            accept_timeout: Duration::minutes(30),
        }
    }

    fn candidate(n: u128, region: &str, open: i32, capacity: i32) -> Candidate {
        Candidate {
            id: Uuid::from_u128(n),
            skills: vec!["broadband".into()],
            regions: vec![region.into()],
            capacity,
            open_orders: open,
            last_dispatched_at: None,
            hours: None,
        }
    }

    const ORDER: Order<'static> = Order {
        region_path: "/bj/bj_cy/",
        category_path: "/broadband/slow/",
        type_key: "fault_repair",
    };

    /// Tuesday 2026-12-01 10:00 in Shanghai.
    fn now() -> DateTime<Utc> {
        "2026-12-01T02:00:00Z".parse().unwrap()
    }

    fn pick(rules: &[Rule], candidates: &[Candidate]) -> Choice {
        choose(rules, ORDER, candidates, &HashSet::new(), now(), ZONE)
    }

    #[test]
    fn the_most_specific_rule_with_a_candidate_wins() {
        let city = rule(1, Some("/bj/"), Strategy::LeastLoaded);
        let district = Rule {
            candidates: vec![Uuid::from_u128(12)],
            ..rule(2, Some("/bj/bj_cy/"), Strategy::LeastLoaded)
        };
        let elsewhere = rule(3, Some("/sh/"), Strategy::LeastLoaded);
        let candidates = [candidate(11, "/bj/", 0, 5), candidate(12, "/bj/", 4, 5)];
        let rules = [city.clone(), district.clone(), elsewhere];
        assert_eq!(
            pick(&rules, &candidates),
            Choice::Assign {
                assignee: Uuid::from_u128(12),
                rule: district.id
            }
        );
        // The district's only candidate is full: the city's rule applies.
        let candidates = [candidate(11, "/bj/", 0, 5), candidate(12, "/bj/", 5, 5)];
        assert_eq!(
            pick(&rules, &candidates),
            Choice::Assign {
                assignee: Uuid::from_u128(11),
                rule: city.id
            }
        );
        let unmatched = [rule(3, Some("/sh/"), Strategy::LeastLoaded)];
        assert_eq!(pick(&unmatched, &candidates), Choice::NoRule);
    }

    #[test]
    fn candidates_cover_the_region_and_have_the_skill() {
        let mut wants_tv = rule(1, None, Strategy::LeastLoaded);
        wants_tv.skill = Some("tv".into());
        let candidates = [
            candidate(11, "/bj/", 0, 5),
            candidate(12, "/bj/bj_hd/", 0, 5),
        ];
        assert_eq!(pick(&[wants_tv], &candidates), Choice::NoCandidate);
        let mut tv = candidate(13, "/bj/bj_cy/", 3, 5);
        tv.skills.push("tv".into());
        let mut wants_tv = rule(1, None, Strategy::LeastLoaded);
        wants_tv.skill = Some("tv".into());
        assert_eq!(
            pick(
                &[wants_tv],
                &[candidates[0].clone(), candidates[1].clone(), tv]
            ),
            Choice::Assign {
                assignee: Uuid::from_u128(13),
                rule: Uuid::from_u128(1)
            }
        );
    }

    #[test]
    fn least_loaded_compares_shares_of_capacity_and_round_robin_takes_turns() {
        let least = rule(1, None, Strategy::LeastLoaded);
        // 2 of 10 is less loaded than 1 of 2.
        let candidates = [candidate(11, "/bj/", 1, 2), candidate(12, "/bj/", 2, 10)];
        assert_eq!(
            pick(std::slice::from_ref(&least), &candidates),
            Choice::Assign {
                assignee: Uuid::from_u128(12),
                rule: least.id
            }
        );
        let turns = rule(2, None, Strategy::RoundRobin);
        let mut recent = candidate(11, "/bj/", 0, 5);
        recent.last_dispatched_at = Some(now() - Duration::minutes(1));
        let mut earlier = candidate(12, "/bj/", 4, 5);
        earlier.last_dispatched_at = Some(now() - Duration::hours(1));
        let never = candidate(13, "/bj/", 4, 5);
        let assigned = |choice| match choice {
            Choice::Assign { assignee, .. } => assignee,
            other @ (Choice::OpensAt(_) | Choice::NoCandidate | Choice::NoRule) => {
                panic!("{other:?}")
            }
        };
        let all = [recent.clone(), earlier.clone(), never];
        assert_eq!(
            assigned(pick(std::slice::from_ref(&turns), &all)),
            Uuid::from_u128(13)
        );
        assert_eq!(
            assigned(pick(std::slice::from_ref(&turns), &[recent, earlier])),
            Uuid::from_u128(12)
        );
    }

    #[test]
    fn the_excluded_are_skipped_and_closed_ones_give_the_next_opening() {
        let any = rule(1, None, Strategy::LeastLoaded);
        let mut night = candidate(11, "/bj/", 0, 5);
        night.hours = Some(BusinessHours {
            time_zone: None,
            weekly: vec![OpeningHours {
                days: vec![Day::Tue],
                from: "18:00".parse().unwrap(),
                to: "23:00".parse().unwrap(),
            }],
            closed_on: Vec::new(),
            special: Vec::new(),
        });
        let declined = candidate(12, "/bj/", 0, 5);
        let excluded = HashSet::from([declined.id]);
        let choice = choose(
            std::slice::from_ref(&any),
            ORDER,
            &[night.clone(), declined.clone()],
            &excluded,
            now(),
            ZONE,
        );
        // Opens at 18:00 Shanghai, 10:00 UTC.
        assert_eq!(
            choice,
            Choice::OpensAt("2026-12-01T10:00:00Z".parse().unwrap())
        );
        let choice = choose(
            std::slice::from_ref(&any),
            ORDER,
            &[night, declined],
            &HashSet::new(),
            now(),
            ZONE,
        );
        assert_eq!(
            choice,
            Choice::Assign {
                assignee: Uuid::from_u128(12),
                rule: any.id
            }
        );
    }

    #[test]
    fn rules_match_on_type_and_category_subtrees() {
        let mut broadband = rule(1, None, Strategy::LeastLoaded);
        broadband.category_path = Some("/broadband/".into());
        broadband.type_key = Some("fault_repair".into());
        assert!(broadband.matches(ORDER));
        broadband.type_key = Some("installation".into());
        assert!(!broadband.matches(ORDER));
        let mut tv = rule(2, None, Strategy::LeastLoaded);
        tv.category_path = Some("/tv/".into());
        assert!(!tv.matches(ORDER));
        let general = rule(3, None, Strategy::LeastLoaded);
        let mut deeper = rule(4, Some("/bj/"), Strategy::LeastLoaded);
        deeper.precedence = 9;
        let order: Vec<Uuid> = applicable(&[general, deeper], ORDER)
            .iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(order, [Uuid::from_u128(4), Uuid::from_u128(3)]);
    }
}
