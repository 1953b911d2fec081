"""What a caller may do: roles, permissions and the pure decision over them."""
