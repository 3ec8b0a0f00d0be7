//! Starting the CLI's helper threads (the early engine, the `-Z` shards)
//! on another core than the thread that starts them.
//!
//! Linux puts a new thread on its parent's core and moves it to an idle
//! one only when the load balancer next looks, which on an otherwise idle
//! machine can be several milliseconds later: meanwhile the two threads
//! take turns on one core while the other sits idle (seen with
//! `sched_switch` traces, bench/RESULTS.md). So the new thread is first
//! allowed only the cores other than its parent's, and once it runs it
//! gives itself back the whole set it would have had, leaving the kernel
//! free to balance from there. Elsewhere (or when any step fails) threads
//! start as usual.

use std::thread::{Builder, JoinHandle};

/// Spawn `f` on a named thread placed, at first, on another core than
/// this thread's.
pub(super) fn spawn<F, T>(name: &str, f: F) -> std::io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let place = imp::Placement::elsewhere();
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let ready = place.is_some();
    let handle = Builder::new().name(name.into()).spawn(move || {
        if ready {
            // Until the parent has moved this thread, restoring the set
            // could be undone by the move.
            let _ = wait.recv();
            imp::restore();
        }
        f()
    })?;
    if let Some(place) = place {
        place.apply(&handle);
    }
    drop(go);
    Ok(handle)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::mem::{size_of, zeroed};
    use std::os::unix::thread::JoinHandleExt;

    /// The cores a new thread may use at first.
    pub(super) struct Placement(libc::cpu_set_t);

    impl Placement {
        /// This thread's allowed cores without the one it runs on, if that
        /// leaves any.
        pub(super) fn elsewhere() -> Option<Placement> {
            // SAFETY: plain calls on a zeroed, correctly sized cpu_set_t.
            unsafe {
                let here = libc::sched_getcpu();
                if here < 0 {
                    return None;
                }
                let mut set: libc::cpu_set_t = zeroed();
                if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut set) != 0 {
                    return None;
                }
                libc::CPU_CLR(here as usize, &mut set);
                (libc::CPU_COUNT(&set) > 0).then_some(Placement(set))
            }
        }

        /// Restrict the new (not yet running past its wait) thread to
        /// these cores.
        pub(super) fn apply<T>(&self, handle: &std::thread::JoinHandle<T>) {
            // SAFETY: the handle's pthread is alive (not joined, not detached).
            unsafe {
                libc::pthread_setaffinity_np(handle.as_pthread_t(), size_of::<libc::cpu_set_t>(), &self.0);
            }
        }
    }

    /// Give the calling thread back every core the process may use.
    pub(super) fn restore() {
        // SAFETY: as above; the process's set is read from its main thread.
        unsafe {
            let mut set: libc::cpu_set_t = zeroed();
            if libc::sched_getaffinity(libc::getpid(), size_of::<libc::cpu_set_t>(), &mut set) == 0 {
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &set);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    pub(super) struct Placement;

    impl Placement {
        pub(super) fn elsewhere() -> Option<Placement> {
            None
        }
        pub(super) fn apply<T>(&self, _: &std::thread::JoinHandle<T>) {}
    }

    pub(super) fn restore() {}
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use std::mem::{size_of, zeroed};

    fn allowed(tid: libc::pid_t) -> libc::cpu_set_t {
        // SAFETY: a zeroed, correctly sized cpu_set_t.
        unsafe {
            let mut set: libc::cpu_set_t = zeroed();
            assert_eq!(libc::sched_getaffinity(tid, size_of::<libc::cpu_set_t>(), &mut set), 0);
            set
        }
    }

    fn same(a: &libc::cpu_set_t, b: &libc::cpu_set_t) -> bool {
        // SAFETY: indices below CPU_SETSIZE.
        (0..libc::CPU_SETSIZE as usize).all(|i| unsafe { libc::CPU_ISSET(i, a) == libc::CPU_ISSET(i, b) })
    }

    /// The thread runs its closure, starts on another core than its
    /// parent's (when there is another), and ends up allowed every core
    /// the process may use: a thread left pinned would be a regression
    /// that no figure shows at once.
    #[test]
    fn a_spread_thread_starts_elsewhere_and_keeps_every_core() {
        let process = allowed(0);
        // SAFETY: a valid set.
        let cores = unsafe { libc::CPU_COUNT(&process) };
        for _ in 0..20 {
            // SAFETY: plain calls.
            let parent = unsafe { libc::sched_getcpu() };
            let handle = super::spawn("spread-test", move || {
                // SAFETY: plain calls.
                let here = unsafe { libc::sched_getcpu() };
                (here, allowed(0))
            })
            .unwrap();
            let (here, set) = handle.join().unwrap();
            assert!(same(&set, &process), "the thread was left with a narrower CPU set");
            if cores > 1 {
                // The parent may itself have moved meanwhile, but it was
                // on `parent` when the child's set was chosen.
                assert_ne!(here, parent, "the thread started on its parent's core");
            }
        }
    }
}
