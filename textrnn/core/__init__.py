"""What every stage and command runs on: params, errors, file writes and faults, signals, the CPU pins, C++ builds."""
