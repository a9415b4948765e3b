package dev.specula.model;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;

/**
 * The protobuf wire format, as much of it as rewriting an ONNX graph needs: a message is
 * read as its fields in order (each a number, a wire type and a value, length-delimited
 * values as a slice of the source bytes), and written back field by field. Fields a
 * rewrite does not touch are copied as they were read, so nothing of a model is lost.
 */
final class OnnxWire {

    static final int VARINT = 0;

    static final int FIXED64 = 1;

    static final int LENGTH_DELIMITED = 2;

    static final int FIXED32 = 5;

    private OnnxWire() {
    }

    /**
     * One field of a message: its number, wire type, and either a numeric value (varint,
     * fixed32, fixed64) or the slice {@code [offset, offset + length)} of {@code source}
     * (length-delimited).
     */
    record Field(int number, int wireType, long value, byte[] source, int offset, int length) {

        /** The length-delimited value's bytes, copied. */
        byte[] bytes() {
            byte[] copy = new byte[length];
            System.arraycopy(source, offset, copy, 0, length);
            return copy;
        }

        /** The length-delimited value as UTF-8 text. */
        String string() {
            return new String(source, offset, length, StandardCharsets.UTF_8);
        }

        /** The length-delimited value as a message's fields. */
        List<Field> message() {
            return read(source, offset, length);
        }

    }

    /** The fields of the message in {@code bytes[offset, offset + length)}, in order. */
    static List<Field> read(byte[] bytes, int offset, int length) {
        List<Field> fields = new ArrayList<>();
        int[] at = { offset };
        int end = offset + length;
        while (at[0] < end) {
            long key = varint(bytes, at, end);
            int number = (int) (key >>> 3);
            int wireType = (int) (key & 7);
            switch (wireType) {
                case VARINT -> fields.add(new Field(number, wireType, varint(bytes, at, end), bytes, 0, 0));
                case FIXED64 -> {
                    fields.add(new Field(number, wireType, littleEndian(bytes, at[0], 8, end), bytes, 0, 0));
                    at[0] += 8;
                }
                case FIXED32 -> {
                    fields.add(new Field(number, wireType, littleEndian(bytes, at[0], 4, end), bytes, 0, 0));
                    at[0] += 4;
                }
                case LENGTH_DELIMITED -> {
                    long size = varint(bytes, at, end);
                    if (size < 0 || size > end - at[0]) {
                        throw new IllegalArgumentException("a field of " + size + " bytes overruns its message");
                    }
                    fields.add(new Field(number, wireType, 0, bytes, at[0], (int) size));
                    at[0] += (int) size;
                }
                default -> throw new IllegalArgumentException("unsupported protobuf wire type " + wireType);
            }
        }
        return fields;
    }

    /** The whole of {@code bytes} as a message's fields. */
    static List<Field> read(byte[] bytes) {
        return read(bytes, 0, bytes.length);
    }

    private static long varint(byte[] bytes, int[] at, int end) {
        long value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (at[0] >= end) {
                throw new IllegalArgumentException("a varint runs past its message");
            }
            byte b = bytes[at[0]++];
            value |= (long) (b & 0x7f) << shift;
            if (b >= 0) {
                return value;
            }
        }
        throw new IllegalArgumentException("a varint longer than 10 bytes");
    }

    private static long littleEndian(byte[] bytes, int at, int size, int end) {
        if (at + size > end) {
            throw new IllegalArgumentException("a fixed-size field runs past its message");
        }
        long value = 0;
        for (int i = size - 1; i >= 0; i--) {
            value = (value << 8) | (bytes[at + i] & 0xff);
        }
        return value;
    }

    /** The packed or repeated int64 values of field {@code number} (TensorProto.dims). */
    static List<Long> longs(List<Field> fields, int number) {
        List<Long> values = new ArrayList<>();
        for (Field field : fields) {
            if (field.number() != number) {
                continue;
            }
            if (field.wireType() == VARINT) {
                values.add(field.value());
            }
            else if (field.wireType() == LENGTH_DELIMITED) {
                int[] at = { field.offset() };
                int end = field.offset() + field.length();
                while (at[0] < end) {
                    values.add(varint(field.source(), at, end));
                }
            }
        }
        return values;
    }

    /** The strings of repeated field {@code number}, in order. */
    static List<String> strings(List<Field> fields, int number) {
        List<String> values = new ArrayList<>();
        for (Field field : fields) {
            if (field.number() == number && field.wireType() == LENGTH_DELIMITED) {
                values.add(field.string());
            }
        }
        return values;
    }

    /** The last value of string field {@code number}, or "" (protobuf's default). */
    static String string(List<Field> fields, int number) {
        List<String> values = strings(fields, number);
        return values.isEmpty() ? "" : values.get(values.size() - 1);
    }

    /** The last value of varint field {@code number}, or {@code absent}. */
    static long integer(List<Field> fields, int number, long absent) {
        long value = absent;
        for (Field field : fields) {
            if (field.number() == number && field.wireType() == VARINT) {
                value = field.value();
            }
        }
        return value;
    }

    /** A message being written, field by field. */
    static final class Writer {

        private final ByteArrayOutputStream out = new ByteArrayOutputStream();

        /** Copies a field as it was read. */
        Writer field(Field field) {
            key(field.number(), field.wireType());
            switch (field.wireType()) {
                case VARINT -> varint(field.value());
                case FIXED64 -> fixed(field.value(), 8);
                case FIXED32 -> fixed(field.value(), 4);
                default -> {
                    varint(field.length());
                    out.write(field.source(), field.offset(), field.length());
                }
            }
            return this;
        }

        Writer varint(int number, long value) {
            key(number, VARINT);
            varint(value);
            return this;
        }

        Writer bytes(int number, byte[] value) {
            key(number, LENGTH_DELIMITED);
            varint(value.length);
            out.writeBytes(value);
            return this;
        }

        Writer string(int number, String value) {
            return bytes(number, value.getBytes(StandardCharsets.UTF_8));
        }

        Writer message(int number, Writer message) {
            return bytes(number, message.toBytes());
        }

        byte[] toBytes() {
            return out.toByteArray();
        }

        private void key(int number, int wireType) {
            varint(((long) number << 3) | wireType);
        }

        private void varint(long value) {
            long rest = value;
            while ((rest & ~0x7fL) != 0) {
                out.write((int) ((rest & 0x7f) | 0x80));
                rest >>>= 7;
            }
            out.write((int) rest);
        }

        private void fixed(long value, int size) {
            for (int i = 0; i < size; i++) {
                out.write((int) (value >>> (8 * i)) & 0xff);
            }
        }

    }

}
