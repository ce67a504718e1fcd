//! The replay bench's filters (`replay/`) give the same verdict and the same output frame on
//! bpfx's JIT, its interpreter (verified in Checked and in Strict mode) and their native
//! build, for every frame of both sizes, the run buffer reused from frame to frame; and the
//! frames exercise what the filters are for (drops, explicit passes, rewrites).

use bpfx::Mode;
use bpfx_benches::replay::{Filter, NativeFrame, frames, programs, run_bpfx, run_native};

#[test]
fn every_engine_and_the_native_build_agree_frame_by_frame() {
    for (filter, mode) in Filter::ALL
        .into_iter()
        .flat_map(|f| [(f, Mode::Checked), (f, Mode::Strict)])
    {
        // Every filter verifies in both modes (lb's checksum pointer in Strict mode too: see
        // docs/performance.md, "Replay").
        let (mut jit, mut interp) = match programs(filter, mode) {
            Ok(p) => p,
            Err(e) => panic!("{} {mode:?}: {e}", filter.name()),
        };
        for size in [64, 1500] {
            let mut verdicts = [0usize; 4];
            for (i, f) in frames(size).iter().enumerate() {
                let (mut a, mut b) = (f.clone(), f.clone());
                let want = run_bpfx(&mut interp, f, &mut a);
                let got = run_bpfx(&mut jit, f, &mut b);
                assert_eq!(
                    (got, &b),
                    (want, &a),
                    "{}/{size} frame {i}: JIT",
                    filter.name()
                );
                let mut n = NativeFrame::new(f);
                if let Some(v) = run_native(filter, &mut n) {
                    assert_eq!(
                        (v, n.bytes_mut().to_vec()),
                        (want, a.clone()),
                        "{}/{size} frame {i}: native",
                        filter.name()
                    );
                }
                if want == 3 {
                    assert_ne!(a, *f, "{}/{size} frame {i}: XDP_TX rewrites", filter.name());
                } else {
                    assert_eq!(
                        a,
                        *f,
                        "{}/{size} frame {i}: only XDP_TX rewrites",
                        filter.name()
                    );
                }
                verdicts[want as usize] += 1;
            }
            // Of every eight frames (`frames`): fw drops UDP 53 from an even source (1 of 8)
            // and passes the rest; lb sends the four to its services and the VLAN-tagged one
            // back out (5 of 8) and passes the rest; pass passes all.
            let expect = match filter {
                Filter::Pass => [0, 0, 64, 0],
                Filter::Fw => [0, 8, 56, 0],
                Filter::Lb => [0, 0, 24, 40],
            };
            assert_eq!(verdicts, expect, "{}/{size}: verdict counts", filter.name());
        }
    }
}
