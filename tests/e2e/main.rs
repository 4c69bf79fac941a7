//! End-to-end tests on real hosts: one shared lab (tests/e2e/lab.toml, nodes
//! node1..node4 at 198.18.0.1..4 with podman, node5 at 198.18.0.5 with docker)
//! for every case; see `harness` for the helpers.
//! Run with `cargo test --test e2e [-- FILTER...]` as root (`.ci/run` does).
//!
//! To add cases: write `pub fn case(ctx: &Ctx) -> Outcome` in a module here and
//! add one line per case to `CASES`.

mod core_cases;
mod docker_cases;
mod fault_cases;
mod harness;
mod lab_cases;
mod nft_cases;
mod ownership_cases;
mod security_cases;
mod targeting_cases;
mod topology_cases;
mod views;

use harness::Case;

// One line per case; keep them so (hence no rustfmt here).
#[rustfmt::skip]
const CASES: &[Case] = &[
    // The lab itself.
    ("lab_ssh_with_verified_host_key", lab_cases::ssh_with_verified_host_key),
    ("lab_node_stores_are_separate", lab_cases::node_stores_are_separate),
    ("lab_published_port_between_nodes", lab_cases::published_port_between_nodes),
    ("lab_load_rootfs_tarball", lab_cases::load_rootfs_tarball),
    ("lab_refuses_second_up_and_non_root", lab_cases::refuses_second_up_and_non_root),
    ("lab_down_after_interrupted_up", lab_cases::down_after_interrupted_up),
    ("lab_failed_up_cleans_up", lab_cases::failed_up_cleans_up),
    // plan / apply / destroy on the lab's nodes.
    ("redis_todo_shape", topology_cases::redis_todo_shape),
    ("drift_is_shown_and_repaired", topology_cases::drift_is_shown_and_repaired),
    ("link_added_in_place", topology_cases::link_added_in_place),
    ("foreign_rules_untouched", topology_cases::foreign_rules_untouched),
    ("destroy_leaves_nothing", topology_cases::destroy_leaves_nothing),
    ("two_topologies_independent", topology_cases::two_topologies_independent),
    ("udp_link", topology_cases::udp_link),
    ("env_passed_verbatim", topology_cases::env_passed_verbatim),
    // The same on a docker node (node5, its own dockerd), with podman nodes.
    ("docker_seed_both_ways", docker_cases::seed_both_ways),
    ("docker_link_changed_in_place", docker_cases::link_changed_in_place),
    ("docker_drift_repaired", docker_cases::drift_repaired),
    ("docker_destroy_leaves_nothing", docker_cases::destroy_leaves_nothing),
    // Shared nodes: ownership by id, and a node removed from the file.
    ("same_name_two_ids_side_by_side", ownership_cases::same_name_two_ids_side_by_side),
    ("destroy_node_cleans_a_node_removed_from_the_file", ownership_cases::destroy_node_cleans_a_node_removed_from_the_file),
    // plan and apply themselves: round trips, host keys, saved plans, locks, failures.
    ("plan_reads_each_node_in_one_round_trip", core_cases::plan_reads_each_node_in_one_round_trip),
    ("host_keys_are_verified", core_cases::host_keys_are_verified),
    ("stale_saved_plan_is_refused", core_cases::stale_saved_plan_is_refused),
    ("apply_lock_names_the_holder", core_cases::apply_lock_names_the_holder),
    ("failure_half_way_then_converges", core_cases::failure_half_way_then_converges),
    ("unreachable_node_is_named", core_cases::unreachable_node_is_named),
    ("show_reports_links_in_force", core_cases::show_reports_links_in_force),
    ("secret_env_reaches_the_container_unshown", core_cases::secret_env_reaches_the_container_unshown),
    // Faults: killed and interrupted applies, the locks they leave.
    ("fault_killed_apply_leaves_a_stale_lock", fault_cases::killed_apply_leaves_a_stale_lock),
    ("fault_ctrl_c_at_the_prompt_changes_nothing", fault_cases::ctrl_c_at_the_prompt_changes_nothing),
    ("fault_sigint_mid_apply_stops_in_good_order", fault_cases::sigint_mid_apply_stops_in_good_order),
    ("fault_second_sigint_exits_at_once", fault_cases::second_sigint_exits_at_once),
    // terraform's targeting habits: --replace, destroy --target.
    ("replace_and_destroy_target", targeting_cases::replace_and_destroy_target),
    // Shared nodes: the route_localnet guard, the node's own namespace, image typos.
    ("route_localnet_guard", security_cases::route_localnet_guard),
    ("host_network_is_refused", security_cases::host_network_is_refused),
    ("replace_to_a_missing_image_keeps_the_old_container", security_cases::replace_to_a_missing_image_keeps_the_old_container),
    // Same-view clusters: a real etcd cluster through view addresses.
    ("views_example_links", views::example_links),
    ("views_etcd_cluster_forms_and_scales", views::etcd_cluster_forms_and_scales),
    // The core cases on nftables nodes (firewall = "nftables"), and the switch.
    ("nft_seed_link_added_and_destroy", nft_cases::seed_link_added_and_destroy),
    ("nft_drift_repaired", nft_cases::drift_repaired),
    ("nft_foreign_rules_and_tables_untouched", nft_cases::foreign_rules_and_tables_untouched),
    ("nft_backend_switch_in_place", nft_cases::backend_switch_in_place),
    ("nft_views_etcd_cluster", nft_cases::views_etcd_cluster),
    // Last, after everything above ran: the machine's own namespace is untouched.
    ("lab_root_namespace_untouched", lab_cases::root_namespace_untouched),
];

fn main() {
    std::process::exit(harness::main(CASES));
}
