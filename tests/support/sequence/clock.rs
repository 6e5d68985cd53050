//! A manual clock: a current-thread runtime whose tokio clock moves only when the test calls
//! [`tokio::time::advance`].
//!
//! tokio's paused clock normally *auto-advances* to the next timer whenever the runtime has
//! nothing to do, and with real sockets that fires timeouts while bytes are still on their
//! way through the kernel. tokio does not auto-advance while a `spawn_blocking` task exists
//! on a current-thread runtime (it cannot know when that task will wake anything); one
//! blocking task that waits for the sequence to end holds the clock still for its whole run.
//! Timers then fire only when a step moves the clock, and the runtime parks on I/O as usual
//! otherwise.
//!
//! Everything in the proxy and the emulators that tells time uses the tokio clock (token
//! expiries, the refresh schedule, backoff, holds, the emulators' expiries), except the mint
//! governor, which counts mints by the wall clock so that counts survive a restart: see
//! [`Step::SpendBudget`](super::step::Step::SpendBudget).

use std::future::Future;

/// Runs `future` to completion on a new current-thread runtime with a manual clock.
///
/// # Panics
/// When the runtime cannot be built.
pub fn run<F: Future>(future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a current-thread runtime");
    runtime.block_on(async {
        let (release, held) = std::sync::mpsc::channel::<()>();
        let hold = tokio::task::spawn_blocking(move || {
            // Returns when `release` is dropped, also when `future` panics.
            let _ = held.recv();
        });
        let out = future.await;
        drop(release);
        let _ = hold.await;
        out
    })
}

/// Lets every task run and every loopback exchange in flight land, without moving the
/// clock: a few rounds of yielding to the scheduler (each polls the I/O driver) with a short
/// real pause between them, for the kernel to deliver what was sent.
pub async fn breathe() {
    for _ in 0..16 {
        tokio::task::yield_now().await;
    }
    // Blocks the runtime's only thread on purpose: nothing is due on it (the clock stands
    // still), and the kernel delivers the loopback bytes meanwhile.
    std::thread::sleep(std::time::Duration::from_micros(400));
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_clock_stands_still_until_advanced_while_io_goes_on() {
        run(async {
            let start = tokio::time::Instant::now();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            let server = tokio::spawn(async move {
                let (mut stream, _) = listener.accept().await.unwrap();
                tokio::io::AsyncWriteExt::write_all(&mut stream, b"hi")
                    .await
                    .unwrap();
            });
            // A timer that an auto-advancing clock would fire at once.
            let timer = tokio::spawn(tokio::time::sleep(Duration::from_secs(60)));
            let mut client = tokio::net::TcpStream::connect(addr).await.unwrap();
            let mut buf = [0u8; 2];
            tokio::io::AsyncReadExt::read_exact(&mut client, &mut buf)
                .await
                .unwrap();
            server.await.unwrap();
            for _ in 0..20 {
                breathe().await;
            }
            assert_eq!(&buf, b"hi");
            assert!(!timer.is_finished());
            assert_eq!(tokio::time::Instant::now(), start);
            tokio::time::advance(Duration::from_secs(60)).await;
            breathe().await;
            assert!(timer.is_finished());
        });
    }
}
