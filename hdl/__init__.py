"""Gateware and the facts it shares with the host: network configuration, fixed-point formats,
LFSR, register map and protocol; processing element, layer engine, relaxation network, command
engine, UART and the accelerator top."""
