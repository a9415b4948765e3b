"""Specula's Python tools: export Hugging Face decoders to ONNX, train and evaluate the embedded pair."""
