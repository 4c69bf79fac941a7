//! End-to-end tests on real hosts: one shared lab (tests/e2e/lab.toml, nodes
//! node1..node4 at 198.18.0.1..4 with podman, node5 at 198.18.0.5 with docker)
//! for every case; see `harness` for the helpers.
//! Run with `cargo test --test e2e [-- FILTER...]` as root (`.ci/run` does).
//!
//! To add cases: write `pub fn case(ctx: &Ctx) -> Outcome` in a module here and
//! add one line per case to `CASES`.

mod core_cases;
mod docker_cases;
mod docker_durable_cases;
mod durable_cases;
mod fault_cases;
mod fault_matrix_cases;
mod fleet_cases;
mod fleet_jump_cases;
mod harness;
mod lab_cases;
mod nft_cases;
mod ownership_cases;
mod private_ports_cases;
mod roll_cases;
mod security_cases;
mod targeting_cases;
mod topology_cases;
mod views;
mod volume_cases;

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
    // First of the docker group: it prepares node5 (the runtime wrapper), so the
    // docker cases after it run their containers under the wrapper.
    ("docker_durable_restarts_keep_links", docker_durable_cases::docker_restarts_keep_links),
    ("docker_seed_both_ways", docker_cases::seed_both_ways),
    ("docker_link_changed_in_place", docker_cases::link_changed_in_place),
    ("docker_drift_repaired", docker_cases::drift_repaired),
    ("docker_destroy_leaves_nothing", docker_cases::destroy_leaves_nothing),
    // Durable links: restarts, crashes and reboots, with no geartopo in between.
    ("durable_restart_of_a_linked_container", durable_cases::restart_of_a_linked_container),
    ("durable_restart_on_nftables", durable_cases::restart_on_nftables),
    ("durable_kill_9_under_the_default_policy", durable_cases::kill_9_under_the_default_policy),
    ("durable_node_reboot_by_the_boot_service", durable_cases::node_reboot_by_the_boot_service),
    ("durable_target_restarted", durable_cases::target_restarted),
    ("durable_old_container_made_durable_on_request", durable_cases::old_container_made_durable_on_request),
    ("durable_etcd_member_restarted", views::etcd_member_restarted),
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
    // Real fleets: node3 is reached as a non-root user with sudo.
    ("fleet_sudo_user_plan_apply_show_lock_destroy", fleet_cases::sudo_user_plan_apply_show_lock_destroy),
    ("fleet_sudo_wanting_a_password_is_a_clear_error", fleet_cases::sudo_wanting_a_password_is_a_clear_error),
    ("fleet_secrets_from_env_and_file", fleet_cases::secrets_from_env_and_file),
    ("fleet_openssh_transport_plan_apply_destroy", fleet_cases::openssh_transport_plan_apply_destroy),
    ("fleet_jump_host_plan_apply_destroy", fleet_jump_cases::jump_host_plan_apply_destroy),
    // Faults: killed and interrupted applies, the locks they leave.
    ("fault_killed_apply_leaves_a_stale_lock", fault_cases::killed_apply_leaves_a_stale_lock),
    ("fault_ctrl_c_at_the_prompt_changes_nothing", fault_cases::ctrl_c_at_the_prompt_changes_nothing),
    ("fault_sigint_mid_apply_stops_in_good_order", fault_cases::sigint_mid_apply_stops_in_good_order),
    ("fault_sigint_after_the_locked_read_changes_nothing", fault_cases::sigint_after_the_locked_read_changes_nothing),
    ("fault_second_sigint_exits_at_once", fault_cases::second_sigint_exits_at_once),
    ("fault_hang_past_the_command_timeout_is_ended", fault_matrix_cases::hang_past_the_command_timeout_is_ended),
    ("fault_partitioned_during_a_hang_keeps_the_lock", fault_matrix_cases::partitioned_during_a_hang_keeps_the_lock_and_force_unlock_ends_it),
    ("fault_killed_after_create", fault_matrix_cases::killed_after_create),
    ("fault_killed_after_init", fault_matrix_cases::killed_after_init),
    ("fault_killed_after_rules", fault_matrix_cases::killed_after_rules),
    ("fault_killed_after_start", fault_matrix_cases::killed_after_start),
    ("fault_killed_after_remove", fault_matrix_cases::killed_after_remove),
    ("fault_unreachable_node_blocks_only_what_needs_it", fault_matrix_cases::an_unreachable_node_blocks_only_what_needs_it),
    ("fault_nat_flushed_inside_a_container", fault_matrix_cases::nat_flushed_inside_a_container_is_restored),
    ("fault_container_removed_by_hand", fault_matrix_cases::container_removed_by_hand_is_created_again),
    ("fault_missing_image", fault_matrix_cases::missing_image_fails_cleanly),
    ("fault_host_port_taken", fault_matrix_cases::host_port_taken_by_another_owner),
    ("fault_partitioned_mid_apply", fault_matrix_cases::partitioned_mid_apply),
    ("fault_sshd_killed_mid_apply", fault_matrix_cases::sshd_killed_mid_apply),
    // terraform's targeting habits: --replace, destroy --target.
    ("replace_and_destroy_target", targeting_cases::replace_and_destroy_target),
    // Shared nodes: the route_localnet guard, the node's own namespace, image typos.
    ("route_localnet_guard", security_cases::route_localnet_guard),
    ("host_network_is_refused", security_cases::host_network_is_refused),
    ("replace_to_a_missing_image_keeps_the_old_container", security_cases::replace_to_a_missing_image_keeps_the_old_container),
    ("private_ports_linked_nodes_only", private_ports_cases::linked_nodes_only),
    // Same-view clusters: a real etcd cluster through view addresses.
    ("views_example_links", views::example_links),
    ("views_etcd_cluster_forms_and_scales", views::etcd_cluster_forms_and_scales),
    ("roll_etcd_rolling_upgrade", roll_cases::etcd_rolling_upgrade),
    // The core cases on nftables nodes (firewall = "nftables"), and the switch.
    ("nft_seed_link_added_and_destroy", nft_cases::seed_link_added_and_destroy),
    ("nft_drift_repaired", nft_cases::drift_repaired),
    ("nft_foreign_rules_and_tables_untouched", nft_cases::foreign_rules_and_tables_untouched),
    ("nft_backend_switch_in_place", nft_cases::backend_switch_in_place),
    ("nft_views_etcd_cluster", nft_cases::views_etcd_cluster),
    // Cluster lifecycle: volumes, container options, `geartopo check`.
    ("volumes_data_survives_a_replace_and_destroy_keeps_it", volume_cases::data_survives_a_replace_and_destroy_keeps_it),
    // Last, after everything above ran: the machine's own namespace is untouched.
    ("lab_root_namespace_untouched", lab_cases::root_namespace_untouched),
];

fn main() {
    std::process::exit(harness::main(CASES));
}
