// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * The program behind vipdrift's line-rate packet source (XdpLiveGenerator).
 *
 * It is never attached to an interface: user space runs it with
 * BPF_PROG_RUN and BPF_F_TEST_XDP_LIVE_FRAMES, and the kernel turns every
 * XDP_TX into a transmit out of the ctx's ingress_ifindex. Each repetition
 * of the run therefore sends one copy of the frame given as data_in.
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

SEC("xdp")
int xdp_live_tx(struct xdp_md *ctx)
{
	(void)ctx;
	return XDP_TX;
}

/* No helpers are called; the licence only needs to be GPL-compatible. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
