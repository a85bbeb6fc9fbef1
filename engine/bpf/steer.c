// SPDX-License-Identifier: MIT OR Apache-2.0
/*
 * vipdrift's XDP steering program (loaded and driven by engine/src/steer.rs).
 *
 * It sends to the AF_XDP socket of the receiving queue only what the engine
 * serves and passes everything else to the kernel, so SSH and the node's own
 * addresses keep working on the same NIC:
 *   - ARP whose target protocol address is in `vip4`;
 *   - ICMPv6 Neighbor Solicitations (next header 58 directly after the IPv6
 *     header, type 135) whose target address is in `vip6`;
 *   - VRRP: IPv4 protocol 112 or IPv6 next header 112;
 *   - IP to an engine-delivered VIP;
 *   - anything else whose destination MAC is in `vmacs` (owned virtual MACs).
 *
 * IP to a kernel-delivered VIP goes to the kernel (with its destination MAC
 * rewritten to the NIC's own, or the kernel would drop a frame sent to a
 * virtual MAC as PACKET_OTHERHOST) only while the VIP's group is owned and
 * the receiving queue's lease, which its worker renews, has not lapsed;
 * otherwise it is dropped and counted. The program stays attached when the
 * process dies, so a dead or frozen daemon stops the kernel's delivery
 * within a lease: it fails closed.
 *
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

/* Queues served (`xsks`), and entries of `lease` before the groups'
 * owned flags (STEER_MAX_QUEUES in steer.rs). */
#define MAX_QUEUES 64
/* Groups whose owned flag `lease` holds (STEER_MAX_GROUPS in steer.rs). */
#define MAX_GROUPS 256

/* `vip_entry.deliver` */
#define DELIVER_ENGINE 0
#define DELIVER_KERNEL 1

/* Indexes of `counts`. */
#define COUNT_NOT_OWNED 0
#define COUNT_LEASE_EXPIRED 1
#define COUNT_TO_KERNEL 2
#define COUNTS 3

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

/* The value of `vip4` and `vip6`. */
struct vip_entry {
	__u32 deliver;
	/* With DELIVER_KERNEL: the group's owned flag is lease[MAX_QUEUES + group]. */
	__u32 group;
};

/* The one entry of `config`. */
struct steer_config {
	__u32 whole_nic;
	/* The NIC's own MAC, for frames passed to the kernel. */
	__u8 mac[6];
	__u8 pad[2];
};

struct {
	__uint(type, BPF_MAP_TYPE_XSKMAP);
	__uint(max_entries, MAX_QUEUES);
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
	__type(value, struct vip_entry);
} vip4 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct ip6_key);
	__type(value, struct vip_entry);
} vip6 SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct steer_config);
} config SEC(".maps");

/*
 * Memory-mapped by the daemon (BPF_F_MMAPABLE), so renewing a lease or
 * flipping ownership is a store, not a syscall. Entries [0, MAX_QUEUES):
 * each queue's lease, the CLOCK_MONOTONIC nanosecond (bpf_ktime_get_ns)
 * until which its worker vouches for it. Entries [MAX_QUEUES, +MAX_GROUPS):
 * each group's owned flag (non-zero: this node is its master).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, MAX_QUEUES + MAX_GROUPS);
	__type(key, __u32);
	__type(value, __u64);
} lease SEC(".maps");

/* What the program dropped or passed to the kernel, per CPU (COUNT_*). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, COUNTS);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

static __always_inline void count(__u32 index)
{
	__u64 *n = bpf_map_lookup_elem(&counts, &index);
	if (n)
		*n += 1;
}

static __always_inline int to_socket(struct xdp_md *ctx)
{
	/* No socket at this queue: XDP_PASS (the low bits of the flags). */
	return bpf_redirect_map(&xsks, ctx->rx_queue_index, XDP_PASS);
}

/* A frame no rule below claims: the engine's if sent to a virtual MAC. */
static __always_inline int by_mac(struct xdp_md *ctx, struct mac_key *dst)
{
	if (bpf_map_lookup_elem(&vmacs, dst))
		return to_socket(ctx);
	return XDP_PASS;
}

/* IP to a VIP: the engine's socket, or the kernel while owned and leased. */
static __always_inline int to_vip(struct xdp_md *ctx, __u8 *eth, const struct vip_entry *vip,
				  const struct steer_config *cfg)
{
	if (vip->deliver != DELIVER_KERNEL)
		return to_socket(ctx);
	__u32 owned_at = MAX_QUEUES + vip->group;
	__u64 *owned = owned_at < MAX_QUEUES + MAX_GROUPS ? bpf_map_lookup_elem(&lease, &owned_at) : 0;
	if (!owned || !*owned) {
		count(COUNT_NOT_OWNED);
		return XDP_DROP;
	}
	__u32 queue = ctx->rx_queue_index;
	__u64 *until = queue < MAX_QUEUES ? bpf_map_lookup_elem(&lease, &queue) : 0;
	if (!until || *until < bpf_ktime_get_ns()) {
		count(COUNT_LEASE_EXPIRED);
		return XDP_DROP;
	}
	if (cfg)
		__builtin_memcpy(eth, cfg->mac, 6); /* written at attach */
	count(COUNT_TO_KERNEL);
	return XDP_PASS;
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

	/* What is not steered by its contents below goes by its destination MAC. */
	struct mac_key mac = {};
	__builtin_memcpy(mac.addr, eth, 6);

	__u16 proto = *(__u16 *)(eth + 12);
	__u8 *l3 = eth + ETH_HLEN_;
	if (proto == ETH_P_8021Q_BE || proto == ETH_P_8021AD_BE) {
		if ((void *)(l3 + VLAN_HLEN_) > data_end)
			return by_mac(ctx, &mac);
		proto = *(__u16 *)(l3 + 2);
		l3 += VLAN_HLEN_;
	}

	if (proto == ETH_P_ARP_BE) {
		/* 8-byte fixed header, then SHA(6) SPA(4) THA(6) TPA(4) for
		 * Ethernet/IPv4: TPA at offset 24. */
		if ((void *)(l3 + 28) > data_end)
			return by_mac(ctx, &mac);
		/* hardware type 1, protocol 0x0800, lengths 6 and 4 */
		if (l3[0] != 0 || l3[1] != 1 || l3[2] != 0x08 || l3[3] != 0x00 || l3[4] != 6 || l3[5] != 4)
			return by_mac(ctx, &mac);
		__u32 tpa;
		__builtin_memcpy(&tpa, l3 + 24, 4);
		if (bpf_map_lookup_elem(&vip4, &tpa))
			return to_socket(ctx);
		return by_mac(ctx, &mac);
	}

	if (proto == ETH_P_IP_BE) {
		if ((void *)(l3 + 20) > data_end)
			return by_mac(ctx, &mac);
		if ((l3[0] >> 4) != 4)
			return by_mac(ctx, &mac);
		if (l3[9] == IPPROTO_VRRP_)
			return to_socket(ctx);
		__u32 daddr;
		__builtin_memcpy(&daddr, l3 + 16, 4);
		struct vip_entry *vip = bpf_map_lookup_elem(&vip4, &daddr);
		if (vip)
			return to_vip(ctx, eth, vip, cfg);
		return by_mac(ctx, &mac);
	}

	if (proto == ETH_P_IPV6_BE) {
		if ((void *)(l3 + 40) > data_end)
			return by_mac(ctx, &mac);
		if ((l3[0] >> 4) != 6)
			return by_mac(ctx, &mac);
		__u8 next = l3[6];
		if (next == IPPROTO_VRRP_)
			return to_socket(ctx);
		/* ICMPv6: type(1) code(1) checksum(2) reserved(4) target(16). A
		 * solicitation for a VIP is the engine's, also when it is sent to
		 * the VIP itself (neighbour unreachability detection). */
		__u8 *icmp = l3 + 40;
		if (next == IPPROTO_ICMPV6_ && (void *)(icmp + 24) <= data_end && icmp[0] == ICMPV6_NS) {
			struct ip6_key target;
			__builtin_memcpy(target.addr, icmp + 8, 16);
			if (bpf_map_lookup_elem(&vip6, &target))
				return to_socket(ctx);
		}
		struct ip6_key daddr6;
		__builtin_memcpy(daddr6.addr, l3 + 24, 16);
		struct vip_entry *vip = bpf_map_lookup_elem(&vip6, &daddr6);
		if (vip)
			return to_vip(ctx, eth, vip, cfg);
		return by_mac(ctx, &mac);
	}

	return by_mac(ctx, &mac);
}

/* bpf_redirect_map and the map helpers are not GPL-only, but stay compatible. */
char LICENSE[] SEC("license") = "Dual MIT/GPL";
