// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * vipdrift's XDP steering program (loaded and driven by engine/src/steer.rs).
 *
 * It sends to the AF_XDP socket of the receiving queue only what the engine
 * serves and passes everything else to the kernel, so SSH and the node's own
 * addresses keep working on the same NIC:
 *   - frames whose destination MAC is in `vmacs` (owned virtual MACs);
 *   - ARP whose target protocol address is in `vip4`;
 *   - ICMPv6 Neighbor Solicitations (next header 58 directly after the IPv6
 *     header, type 135) whose target address is in `vip6`;
 *   - VRRP: IPv4 protocol 112 or IPv6 next header 112.
 * One 802.1Q (or 802.1ad) tag is skipped. With `config.whole_nic` set, every
 * frame goes to the socket. A queue without a socket in `xsks` passes
 * (bpf_redirect_map's fallback action).
 */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

#define ETH_HLEN_ 14
#define VLAN_HLEN_ 4
#define ETH_P_IP_BE 0x0008     /* htons(0x0800) on a little-endian target */
#define ETH_P_ARP_BE 0x0608    /* htons(0x0806) */
#define ETH_P_IPV6_BE 0xdd86   /* htons(0x86dd) */
#define ETH_P_8021Q_BE 0x0081  /* htons(0x8100) */
#define ETH_P_8021AD_BE 0xa888 /* htons(0x88a8) */
#define IPPROTO_VRRP_ 112
#define IPPROTO_ICMPV6_ 58
#define ICMPV6_NS 135

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the *_BE constants above assume a little-endian BPF target (bpfel)"
#endif

/* Key of `vmacs`: the MAC in the first six bytes, two zero bytes of padding. */
struct mac_key {
	__u8 addr[6];
	__u8 pad[2];
};

/* Key of `vip6`: the address in network order. */
struct ip6_key {
	__u8 addr[16];
};

/* The one entry of `config`. */
struct steer_config {
	__u32 whole_nic;
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u32);
} xsks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct mac_key);
	__type(value, __u8);
} vmacs SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32); /* IPv4 address in network order */
	__type(value, __u8);
} vip4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ip6_key);
	__type(value, __u8);
} vip6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

static __always_inline int to_socket(struct xdp_md *ctx)
{
	/* No socket at this queue: XDP_PASS (the low bits of the flags). */
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

SEC("xdp")
int vipdrift_steer(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	__u32 zero = 0;

	struct steer_config *cfg = bpf_map_lookup_elem(&config, &zero);
	if (cfg && cfg->whole_nic)
		return to_socket(ctx);

	__u8 *eth = data;
	if ((void *)(eth + ETH_HLEN_) > data_end)
		return XDP_PASS;

	struct mac_key mac = {};
	__builtin_memcpy(mac.addr, eth, 6);
	if (bpf_map_lookup_elem(&vmacs, &mac))
		return to_socket(ctx);

	__u16 proto = *(__u16 *)(eth + 12);
	__u8 *l3 = eth + ETH_HLEN_;
	if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE) {
		if ((void *)(l3 + VLAN_HLEN_) > data_end)
			return XDP_PASS;
		proto = *(__u16 *)(l3 + 2);
		l3 += VLAN_HLEN_;
	}

	if (proto == ETH_P_ARP_BE) {
		/* 8-byte fixed header, then SHA(6) SPA(4) THA(6) TPA(4) for
		 * Ethernet/IPv4: TPA at offset 24. */
		if ((void *)(l3 + 28) > data_end)
			return XDP_PASS;
		/* hardware type 1, protocol 0x0800, lengths 6 and 4 */
		if (l3[0] != 0 || l3[1] != 1 || l3[2] != 0x08 || l3[3] != 0x00 || l3[4] != 6 || l3[5] != 4)
			return XDP_PASS;
		__u32 tpa;
		__builtin_memcpy(&tpa, l3 + 24, 4);
		if (bpf_map_lookup_elem(&vip4, &tpa))
			return to_socket(ctx);
		return XDP_PASS;
	}

	if (proto == ETH_P_IP_BE) {
		if ((void *)(l3 + 20) > data_end)
			return XDP_PASS;
		if ((l3[0] >> 4) != 4)
			return XDP_PASS;
		if (l3[9] == IPPROTO_VRRP_)
			return to_socket(ctx);
		/* Traffic for a VIP (ping in own_mac mode, where the frame is
		 * addressed to the interface's own MAC). */
		__u32 daddr;
		__builtin_memcpy(&daddr, l3 + 16, 4);
		if (bpf_map_lookup_elem(&vip4, &daddr))
			return to_socket(ctx);
		return XDP_PASS;
	}

	if (proto == ETH_P_IPV6_BE) {
		if ((void *)(l3 + 40) > data_end)
			return XDP_PASS;
		if ((l3[0] >> 4) != 6)
			return XDP_PASS;
		__u8 next = l3[6];
		if (next == IPPROTO_VRRP_)
			return to_socket(ctx);
		struct ip6_key daddr6;
		__builtin_memcpy(daddr6.addr, l3 + 24, 16);
		if (bpf_map_lookup_elem(&vip6, &daddr6))
			return to_socket(ctx);
		if (next != IPPROTO_ICMPV6_)
			return XDP_PASS;
		/* ICMPv6: type(1) code(1) checksum(2) reserved(4) target(16) */
		__u8 *icmp = l3 + 40;
		if ((void *)(icmp + 24) > data_end)
			return XDP_PASS;
		if (icmp[0] != ICMPV6_NS)
			return XDP_PASS;
		struct ip6_key target;
		__builtin_memcpy(target.addr, icmp + 8, 16);
		if (bpf_map_lookup_elem(&vip6, &target))
			return to_socket(ctx);
		return XDP_PASS;
	}

	return XDP_PASS;
}

/* bpf_redirect_map and the map helpers are not GPL-only, but stay compatible. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
