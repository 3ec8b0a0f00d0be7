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
    // What the thread gives itself back: the set it would have had.
    let restore = place.as_ref().map(imp::Placement::all);
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let handle = Builder::new().name(name.into()).spawn(move || {
        if let Some(all) = restore {
            // Until the parent has moved this thread, restoring the set
            // could be undone by the move.
            let _ = wait.recv();
            all.set_for_this_thread();
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

    /// A set of cores.
    #[derive(Clone, Copy)]
    pub(super) struct Cores(libc::cpu_set_t);

    impl Cores {
        /// Allow the calling thread these cores.
        pub(super) fn set_for_this_thread(&self) {
            // SAFETY: a valid, correctly sized cpu_set_t.
            unsafe {
                libc::sched_setaffinity(0, size_of::<libc::cpu_set_t>(), &self.0);
            }
        }
    }

    /// The cores a new thread may use at first (`first`), and those it
    /// may use after (`all`, this thread's).
    pub(super) struct Placement {
        first: libc::cpu_set_t,
        all: libc::cpu_set_t,
    }

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
                let mut all: libc::cpu_set_t = zeroed();
                if libc::sched_getaffinity(0, size_of::<libc::cpu_set_t>(), &mut all) != 0 {
                    return None;
                }
                let mut first = all;
                libc::CPU_CLR(here as usize, &mut first);
                (libc::CPU_COUNT(&first) > 0).then_some(Placement { first, all })
            }
        }

        pub(super) fn all(&self) -> Cores {
            Cores(self.all)
        }

        /// Restrict the new (not yet running past its wait) thread to
        /// the first cores.
        pub(super) fn apply<T>(&self, handle: &std::thread::JoinHandle<T>) {
            // SAFETY: the handle's pthread is alive (not joined, not detached).
            unsafe {
                libc::pthread_setaffinity_np(handle.as_pthread_t(), size_of::<libc::cpu_set_t>(), &self.first);
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    #[derive(Clone, Copy)]
    pub(super) struct Cores;

    impl Cores {
        pub(super) fn set_for_this_thread(&self) {}
    }

    pub(super) struct Placement;

    impl Placement {
        pub(super) fn elsewhere() -> Option<Placement> {
            None
        }
        pub(super) fn all(&self) -> Cores {
            Cores
        }
        pub(super) fn apply<T>(&self, _: &std::thread::JoinHandle<T>) {}
    }
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

    /// `apply` narrows the new thread's set to the cores other than the
    /// parent's (the kernel's wake-up often lands it elsewhere anyway, so
    /// the spawn test alone would not notice it missing).
    #[test]
    fn apply_leaves_out_the_parents_core() {
        use std::os::unix::thread::JoinHandleExt;
        let Some(place) = super::imp::Placement::elsewhere() else {
            return; // one core: nothing to spread over
        };
        let process = allowed(0);
        let (go, wait) = std::sync::mpsc::channel::<()>();
        let handle = std::thread::spawn(move || {
            let _ = wait.recv();
        });
        place.apply(&handle);
        // SAFETY: a zeroed, correctly sized cpu_set_t; the thread is alive.
        let set = unsafe {
            let mut set: libc::cpu_set_t = zeroed();
            assert_eq!(
                libc::pthread_getaffinity_np(handle.as_pthread_t(), size_of::<libc::cpu_set_t>(), &mut set),
                0
            );
            set
        };
        drop(go);
        handle.join().unwrap();
        // The parent's core (whichever it was then) is the one left out.
        // SAFETY: valid sets.
        let (narrowed, all) = unsafe { (libc::CPU_COUNT(&set), libc::CPU_COUNT(&process)) };
        assert_eq!(narrowed, all - 1, "the new thread may still use every core");
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
