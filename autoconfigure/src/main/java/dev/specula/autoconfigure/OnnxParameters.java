package dev.specula.autoconfigure;

import java.io.EOFException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;

/**
 * Counts a model's parameters: the elements of its graph's initializers, read from the
 * protobuf of {@code model.onnx} ({@code ModelProto.graph} = field 7,
 * {@code GraphProto.initializer} = field 5, {@code TensorProto.dims} = field 1,
 * {@code TensorProto.name} = field 8), rotary tables aside. Weights, in the file or in
 * external data, are skipped, never read.
 */
final class OnnxParameters {

    private static final int VARINT = 0;

    private static final int FIXED64 = 1;

    private static final int LENGTH_DELIMITED = 2;

    private static final int FIXED32 = 5;

    /**
     * Initializers that are tables, not parameters: the fused graph's rotary cos/sin
     * caches ({@code rotary.cos_cache}, {@code rotary.sin_cache}; tools/
     * export_fused.py).
     */
    private static final byte[] NOT_WEIGHTS = "rotary.".getBytes(java.nio.charset.StandardCharsets.US_ASCII);

    private final FileChannel channel;

    private final ByteBuffer buffer = ByteBuffer.allocate(8192);

    /** File offset of the buffer's first byte. */
    private long bufferStart;

    private OnnxParameters(FileChannel channel) {
        this.channel = channel;
        this.buffer.limit(0);
    }

    /** Elements over all initializers of the graph in {@code model}. */
    static long count(Path model) throws IOException {
        try (FileChannel channel = FileChannel.open(model, StandardOpenOption.READ)) {
            OnnxParameters reader = new OnnxParameters(channel);
            return reader.model(channel.size());
        }
    }

    private long model(long end) throws IOException {
        long parameters = 0;
        while (position() < end) {
            long tag = varint();
            if (tag >>> 3 == 7 && (tag & 7) == LENGTH_DELIMITED) {
                long length = varint();
                parameters += graph(position() + length);
            }
            else {
                skip(tag);
            }
        }
        return parameters;
    }

    private long graph(long end) throws IOException {
        long parameters = 0;
        while (position() < end) {
            long tag = varint();
            if (tag >>> 3 == 5 && (tag & 7) == LENGTH_DELIMITED) {
                long length = varint();
                parameters += tensorElements(position() + length);
            }
            else {
                skip(tag);
            }
        }
        seek(end);
        return parameters;
    }

    private long tensorElements(long end) throws IOException {
        long elements = 1;
        boolean table = false;
        while (position() < end) {
            long tag = varint();
            if (tag >>> 3 == 8 && (tag & 7) == LENGTH_DELIMITED) {
                table = startsWith(varint(), NOT_WEIGHTS);
            }
            else if (tag >>> 3 == 1 && (tag & 7) == VARINT) {
                elements *= varint();
            }
            else if (tag >>> 3 == 1 && (tag & 7) == LENGTH_DELIMITED) {
                long packedEnd = position() + varint();
                while (position() < packedEnd) {
                    elements *= varint();
                }
            }
            else {
                skip(tag);
            }
        }
        seek(end);
        return table ? 0 : elements;
    }

    /**
     * Whether a string field of {@code length} bytes at the current position starts with
     * {@code prefix}; leaves the position after the field.
     */
    private boolean startsWith(long length, byte[] prefix) throws IOException {
        long end = position() + length;
        boolean matches = length >= prefix.length;
        for (int i = 0; matches && i < prefix.length; i++) {
            matches = readByte() == prefix[i];
        }
        seek(end);
        return matches;
    }

    private void skip(long tag) throws IOException {
        switch ((int) (tag & 7)) {
            case VARINT -> varint();
            case FIXED64 -> seek(position() + 8);
            case LENGTH_DELIMITED -> {
                long length = varint();
                seek(position() + length);
            }
            case FIXED32 -> seek(position() + 4);
            default -> throw new IOException("Unsupported protobuf wire type " + (tag & 7) + " at " + position());
        }
    }

    private long varint() throws IOException {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            int b = readByte();
            value |= (long) (b & 0x7F) << shift;
            if ((b & 0x80) == 0) {
                return value;
            }
        }
        throw new IOException("Malformed varint at " + position());
    }

    private int readByte() throws IOException {
        if (!buffer.hasRemaining()) {
            bufferStart += buffer.limit();
            buffer.clear();
            int read = channel.read(buffer, bufferStart);
            buffer.flip();
            if (read <= 0) {
                throw new EOFException("Unexpected end of ONNX file at " + bufferStart);
            }
        }
        return buffer.get() & 0xFF;
    }

    private long position() {
        return bufferStart + buffer.position();
    }

    private void seek(long target) {
        if (target >= bufferStart && target <= bufferStart + buffer.limit()) {
            buffer.position((int) (target - bufferStart));
        }
        else {
            bufferStart = target;
            buffer.limit(0);
        }
    }

}
