//! Property test: random sequences of add / add_after / get / done / clock moves / shutdown,
//! checked step by step against a small reference model of client-go's semantics.
//!
//! Invariants checked:
//! * no key is handed out while a worker still holds it;
//! * a key is handed out at most once per burst of adds (an add must happen between two
//!   hand-outs of the same key);
//! * no added key is lost before shutdown: at the end every added key has been handed out;
//! * and, beyond those, the exact FIFO order and the exact `stats()` after every step.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Duration;

use ecm_workqueue::{DelayingQueue, QueueConfig};
use futures::FutureExt;
use proptest::prelude::*;
use tokio::time::Instant;

#[derive(Debug, Clone)]
enum Op {
    Add(u8),
    AddAfter(u8, u64),
    Get,
    /// Finish the n-th held key (modulo the number held).
    Done(usize),
    /// `done` for a key nobody holds (must be a no-op).
    DoneUnheld(u8),
    Advance(u64),
    ShutDown,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0u8..6).prop_map(Op::Add),
        4 => (0u8..6, 0u64..40).prop_map(|(k, ms)| Op::AddAfter(k, ms)),
        6 => Just(Op::Get),
        4 => any::<usize>().prop_map(Op::Done),
        1 => (0u8..6).prop_map(Op::DoneUnheld),
        3 => (1u64..30).prop_map(Op::Advance),
        1 => Just(Op::ShutDown),
    ]
}

/// client-go semantics, written as plainly as possible.
#[derive(Default)]
struct Model {
    /// Keys ready to hand out, in order.
    fifo: VecDeque<u8>,
    /// Keys added since their last hand-out (client-go's dirty set).
    dirty: HashSet<u8>,
    /// Keys handed out and not done.
    held: HashSet<u8>,
    /// Waiting keys: key -> (deadline in ms, sequence number).
    waiting: HashMap<u8, (u64, u64)>,
    seq: u64,
    now_ms: u64,
    shut_down: bool,
    /// Adds of each key since its last hand-out.
    adds_since_handout: HashMap<u8, usize>,
}

impl Model {
    fn add(&mut self, key: u8) {
        if self.shut_down {
            return;
        }
        *self.adds_since_handout.entry(key).or_default() += 1;
        if !self.dirty.insert(key) {
            return;
        }
        if !self.held.contains(&key) {
            self.fifo.push_back(key);
        }
    }

    fn add_after(&mut self, key: u8, ms: u64) {
        if self.shut_down {
            return;
        }
        if ms == 0 {
            self.add(key);
            return;
        }
        let at = self.now_ms + ms;
        let seq = self.seq;
        self.seq += 1;
        match self.waiting.get_mut(&key) {
            Some(entry) if entry.0 <= at => {}
            Some(entry) => *entry = (at, seq),
            None => {
                self.waiting.insert(key, (at, seq));
            }
        }
    }

    fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        let mut due: Vec<_> = self
            .waiting
            .iter()
            .filter(|(_, (at, _))| *at <= self.now_ms)
            .map(|(key, pos)| (*pos, *key))
            .collect();
        due.sort_unstable();
        for (_, key) in due {
            self.waiting.remove(&key);
            self.add(key);
        }
    }

    fn get(&mut self) -> Option<u8> {
        let key = self.fifo.pop_front()?;
        self.dirty.remove(&key);
        self.held.insert(key);
        Some(key)
    }

    fn done(&mut self, key: u8) {
        if !self.held.remove(&key) {
            return;
        }
        if self.dirty.contains(&key) {
            self.fifo.push_back(key);
        }
    }

    fn shut_down(&mut self) {
        self.shut_down = true;
        self.waiting.clear();
    }
}

struct Harness {
    queue: DelayingQueue<u8>,
    model: Model,
    /// Keys in the order they were handed out to "workers".
    held_order: Vec<u8>,
}

impl Harness {
    fn check_stats(&self) -> Result<(), TestCaseError> {
        let stats = self.queue.stats();
        let m = &self.model;
        prop_assert_eq!(stats.queued, m.fifo.len());
        prop_assert_eq!(stats.processing, m.held.len());
        prop_assert_eq!(stats.requeue_on_done, m.dirty.intersection(&m.held).count());
        prop_assert_eq!(stats.waiting, m.waiting.len());
        prop_assert_eq!(stats.shutting_down, m.shut_down);
        Ok(())
    }

    /// A `get` that must not block: the model says whether a key is ready.
    fn get(&mut self) -> Result<Option<u8>, TestCaseError> {
        let got = self.queue.get().now_or_never();
        let expected = self.model.get();
        match (got, expected) {
            (Some(Some(key)), Some(expected)) => {
                prop_assert_eq!(key, expected, "FIFO order");
                prop_assert!(!self.held_order.contains(&key), "key {} handed out while held", key);
                let adds = self.model.adds_since_handout.insert(key, 0).unwrap_or(0);
                prop_assert!(adds > 0, "key {} handed out twice for one add burst", key);
                self.held_order.push(key);
                Ok(Some(key))
            }
            (Some(None), None) => {
                prop_assert!(self.model.shut_down, "get returned None before shutdown");
                Ok(None)
            }
            (None, None) => {
                prop_assert!(!self.model.shut_down, "get blocked after shutdown");
                // Every key added since its last hand-out is held (and parked until done).
                prop_assert!(self.model.dirty.is_subset(&self.model.held));
                Ok(None)
            }
            (got, expected) => {
                prop_assert!(false, "get gave {:?}, model expected {:?}", got, expected);
                unreachable!()
            }
        }
    }

    fn done_nth(&mut self, n: usize) {
        if self.held_order.is_empty() {
            return;
        }
        let key = self.held_order.remove(n % self.held_order.len());
        self.queue.done(&key);
        self.model.done(key);
    }

    async fn advance(&mut self, ms: u64) {
        tokio::time::advance(Duration::from_millis(ms)).await;
        self.model.advance(ms);
        let now = Instant::now();
        // Wait (by condition, not by sleeping) until the timer task fired everything due.
        self.queue
            .wait_until(|_| self.queue.next_ready_at().is_none_or(|at| at > now))
            .await;
    }

    async fn run(&mut self, ops: Vec<Op>) -> Result<(), TestCaseError> {
        for op in ops {
            match op {
                Op::Add(key) => {
                    self.queue.add(key);
                    self.model.add(key);
                }
                Op::AddAfter(key, ms) => {
                    self.queue.add_after(key, Duration::from_millis(ms));
                    self.model.add_after(key, ms);
                }
                Op::Get => {
                    self.get()?;
                }
                Op::Done(n) => self.done_nth(n),
                Op::DoneUnheld(key) => {
                    if !self.model.held.contains(&key) {
                        self.queue.done(&key);
                    }
                }
                Op::Advance(ms) => self.advance(ms).await,
                Op::ShutDown => {
                    self.queue.shut_down();
                    self.model.shut_down();
                }
            }
            self.check_stats()?;
        }

        // Finish: workers complete everything, the clock runs out every delay.
        let was_shut_down = self.model.shut_down;
        loop {
            while !self.held_order.is_empty() {
                self.done_nth(0);
            }
            if let Some(at) = self.queue.next_ready_at() {
                let ms = (at - Instant::now()).as_millis() as u64;
                self.advance(ms).await;
            }
            while self.get()?.is_some() {}
            self.check_stats()?;
            if self.held_order.is_empty() && self.model.waiting.is_empty() {
                break;
            }
        }
        if !was_shut_down {
            // Nothing added before shutdown was lost.
            prop_assert!(self.model.dirty.is_empty());
            prop_assert!(self.queue.is_idle());
        }
        self.queue.shut_down();
        prop_assert_eq!(self.queue.get().now_or_never(), Some(None));
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn queue_matches_the_model_and_keeps_its_invariants(ops in prop::collection::vec(op(), 0..80)) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut harness = Harness {
                queue: DelayingQueue::new(QueueConfig::default()),
                model: Model::default(),
                held_order: Vec::new(),
            };
            harness.run(ops).await
        })?;
    }
}
