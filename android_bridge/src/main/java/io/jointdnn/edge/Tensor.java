package io.jointdnn.edge;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * A named tensor as it crosses the bridge: dtype name, shape, and the elements as little-endian
 * bytes in C (row-major) order -- the layout LiteRT's {@code Interpreter} reads and writes with a
 * {@code ByteBuffer} in native order on Android's little-endian ABIs.
 *
 * <p>dtype names are numpy's: {@code bool, int8, uint8, int16, uint16, int32, uint32, int64,
 * uint64, float16, bfloat16, float32, float64, complex64, complex128}.
 */
public final class Tensor {
    private final String name;
    private final String dtype;
    private final long[] shape;
    private final byte[] data;

    /** Wraps {@code data} (not copied); its length must be the element count times the item size. */
    public Tensor(String name, String dtype, long[] shape, byte[] data) {
        if (name == null || dtype == null || shape == null || data == null) {
            throw new IllegalArgumentException("name, dtype, shape and data must not be null");
        }
        long want = count(shape) * itemSize(dtype);
        if (want != data.length) {
            throw new IllegalArgumentException("tensor " + name + ": " + data.length + " bytes given, "
                    + Arrays.toString(shape) + " " + dtype + " needs " + want);
        }
        this.name = name;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.data = data;
    }

    public static Tensor ofFloats(String name, long[] shape, float[] values) {
        ByteBuffer b = allocate(values.length, 4);
        b.asFloatBuffer().put(values);
        return new Tensor(name, "float32", shape, b.array());
    }

    public static Tensor ofInts(String name, long[] shape, int[] values) {
        ByteBuffer b = allocate(values.length, 4);
        b.asIntBuffer().put(values);
        return new Tensor(name, "int32", shape, b.array());
    }

    public static Tensor ofLongs(String name, long[] shape, long[] values) {
        ByteBuffer b = allocate(values.length, 8);
        b.asLongBuffer().put(values);
        return new Tensor(name, "int64", shape, b.array());
    }

    /** Unsigned 8-bit elements (e.g. image pixels); Java's signed bytes stand for 0..255. */
    public static Tensor ofUint8(String name, long[] shape, byte[] values) {
        return new Tensor(name, "uint8", shape, values.clone());
    }

    /** From a buffer's remaining bytes (e.g. a LiteRT output buffer), copied. */
    public static Tensor fromBuffer(String name, String dtype, long[] shape, ByteBuffer buffer) {
        ByteBuffer view = buffer.duplicate();
        byte[] bytes = new byte[view.remaining()];
        view.get(bytes);
        return new Tensor(name, dtype, shape, bytes);
    }

    public String name() {
        return name;
    }

    public String dtype() {
        return dtype;
    }

    public long[] shape() {
        return shape.clone();
    }

    /** The raw little-endian bytes (not a copy). */
    public byte[] data() {
        return data;
    }

    /** Number of elements. */
    public long size() {
        return count(shape);
    }

    /**
     * A copy of the data in a direct buffer in native order, positioned at 0: what LiteRT's
     * {@code Interpreter.run}/{@code runForMultipleInputsOutputs} reads without another copy.
     */
    public ByteBuffer toDirectBuffer() {
        ByteBuffer b = ByteBuffer.allocateDirect(data.length).order(ByteOrder.nativeOrder());
        if (ByteOrder.nativeOrder() == ByteOrder.LITTLE_ENDIAN) {
            b.put(data);
        } else {
            throw new UnsupportedOperationException("big-endian hosts are not supported");
        }
        b.rewind();
        return b;
    }

    public float[] toFloats() {
        require("float32");
        float[] out = new float[data.length / 4];
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        return out;
    }

    public int[] toInts() {
        require("int32");
        int[] out = new int[data.length / 4];
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(out);
        return out;
    }

    public long[] toLongs() {
        require("int64");
        long[] out = new long[data.length / 8];
        ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(out);
        return out;
    }

    /** Bytes per element of a dtype; IllegalArgumentException for names the wire format does not carry. */
    public static int itemSize(String dtype) {
        switch (dtype) {
            case "bool":
            case "int8":
            case "uint8":
                return 1;
            case "int16":
            case "uint16":
            case "float16":
            case "bfloat16":
                return 2;
            case "int32":
            case "uint32":
            case "float32":
                return 4;
            case "int64":
            case "uint64":
            case "float64":
            case "complex64":
                return 8;
            case "complex128":
                return 16;
            default:
                throw new IllegalArgumentException("unknown dtype " + dtype);
        }
    }

    @Override
    public String toString() {
        return "Tensor(" + name + ", " + dtype + ", " + Arrays.toString(shape) + ")";
    }

    private void require(String want) {
        if (!dtype.equals(want)) {
            throw new IllegalStateException("tensor " + name + " is " + dtype + ", not " + want);
        }
    }

    private static ByteBuffer allocate(int n, int itemSize) {
        return ByteBuffer.allocate(n * itemSize).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static long count(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in " + Arrays.toString(shape));
            }
            n *= d;
        }
        return n;
    }
}
