//! Track stage: polls a bulk task until it is terminal (FINISHED or FAILED) or a deadline
//! passes. The schedule is a pure function; the loop takes the fetch as a closure so tests run
//! it under paused tokio time. Used by `send`; talks to the API only through that closure.

use std::future::Future;
use std::time::Duration;

use crate::site::api::model::TaskStatusResponse;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollPolicy {
    pub initial: Duration,
    pub cap: Duration,
    /// Give up waiting after this long; the task's outcome is then unknown.
    pub timeout: Duration,
}

impl Default for PollPolicy {
    fn default() -> Self {
        PollPolicy {
            initial: Duration::from_millis(250),
            cap: Duration::from_secs(30),
            // Non-terminal tasks older than 30 minutes are timed out by the server (CONTRACT §7.3).
            timeout: Duration::from_secs(35 * 60),
        }
    }
}

/// Delay before poll number `n` (0-based): doubling from `initial`, capped.
pub fn poll_delay(p: &PollPolicy, n: u32) -> Duration {
    p.initial
        .checked_mul(1u32 << n.min(20))
        .unwrap_or(p.cap)
        .min(p.cap)
}

#[derive(Debug, PartialEq, Eq)]
pub enum TrackError<E> {
    /// The task was not terminal by the deadline; `last` is the last status seen.
    TimedOut {
        last: Option<TaskStatusResponse>,
    },
    Fetch(E),
}

/// Polls until the task is terminal. Fetch errors end the wait (the client already retried
/// transient ones); the deadline is checked before each sleep, so the last poll is never skipped.
pub async fn until_terminal<E, F, Fut>(
    p: &PollPolicy,
    mut fetch: F,
) -> Result<TaskStatusResponse, TrackError<E>>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<TaskStatusResponse, E>>,
{
    let start = tokio::time::Instant::now();
    let mut last = None;
    for n in 0.. {
        let elapsed = start.elapsed();
        if elapsed >= p.timeout {
            return Err(TrackError::TimedOut { last });
        }
        // Stretch or cut the last wait so the final poll lands on the deadline.
        let wait = poll_delay(p, n).min(p.timeout - elapsed);
        tokio::time::sleep(wait).await;
        let status = fetch().await.map_err(TrackError::Fetch)?;
        if status.status.is_terminal() {
            return Ok(status);
        }
        last = Some(status);
    }
    unreachable!("the poll loop only ends by returning")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::site::api::model::TaskStatus;
    use std::sync::{Arc, Mutex};

    fn status(s: TaskStatus) -> TaskStatusResponse {
        TaskStatusResponse {
            id: "t".into(),
            task_type: String::new(),
            status: s,
            failures: vec![],
            created_at: String::new(),
            updated_at: String::new(),
        }
    }

    #[test]
    fn schedule_doubles_and_caps() {
        let p = PollPolicy {
            initial: Duration::from_millis(250),
            cap: Duration::from_secs(2),
            timeout: Duration::from_secs(60),
        };
        let got: Vec<u64> = (0..6)
            .map(|n| poll_delay(&p, n).as_millis() as u64)
            .collect();
        assert_eq!(got, vec![250, 500, 1000, 2000, 2000, 2000]);
        assert_eq!(poll_delay(&p, u32::MAX), Duration::from_secs(2));
    }

    #[tokio::test(start_paused = true)]
    async fn polls_on_schedule_until_terminal() {
        let p = PollPolicy {
            initial: Duration::from_millis(100),
            cap: Duration::from_millis(400),
            timeout: Duration::from_secs(60),
        };
        let seq = Arc::new(Mutex::new(vec![
            TaskStatus::NotStarted,
            TaskStatus::InProgress,
            TaskStatus::InProgress,
            TaskStatus::InProgress,
            TaskStatus::Finished,
        ]));
        let times = Arc::new(Mutex::new(Vec::new()));
        let start = tokio::time::Instant::now();
        let r = until_terminal::<(), _, _>(&p, || {
            let seq = seq.clone();
            let times = times.clone();
            async move {
                times
                    .lock()
                    .unwrap()
                    .push(start.elapsed().as_millis() as u64);
                Ok(status(seq.lock().unwrap().remove(0)))
            }
        })
        .await
        .unwrap();
        assert_eq!(r.status, TaskStatus::Finished);
        assert_eq!(*times.lock().unwrap(), vec![100, 300, 700, 1100, 1500]);
    }

    #[tokio::test(start_paused = true)]
    async fn times_out_with_the_last_status() {
        let p = PollPolicy {
            initial: Duration::from_secs(1),
            cap: Duration::from_secs(4),
            timeout: Duration::from_secs(10),
        };
        let polls = Arc::new(Mutex::new(0u32));
        let start = tokio::time::Instant::now();
        let r = until_terminal::<(), _, _>(&p, || {
            let polls = polls.clone();
            async move {
                *polls.lock().unwrap() += 1;
                Ok(status(TaskStatus::InProgress))
            }
        })
        .await;
        match r {
            Err(TrackError::TimedOut { last: Some(l) }) => {
                assert_eq!(l.status, TaskStatus::InProgress)
            }
            other => panic!("{other:?}"),
        }
        // Polls at 1, 3, 7 and 10 (the last wait is cut to land on the deadline).
        assert_eq!(*polls.lock().unwrap(), 4);
        assert_eq!(start.elapsed(), Duration::from_secs(10));
    }
}
