"""The まちづくり手帳 (activity notebook) of each person and the staff's figures."""
