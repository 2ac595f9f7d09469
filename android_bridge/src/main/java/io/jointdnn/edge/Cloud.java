package io.jointdnn.edge;

import com.chaquo.python.PyObject;

import org.json.JSONException;
import org.json.JSONObject;

import java.util.List;

/**
 * Plan-only mode: a client of the jointdnn-edge cloud server. The app runs its mobile layers with
 * LiteRT and sends each cloud run of the {@link Schedule} through {@link #infer}; the client
 * measures the link as it goes ({@link #estimate}), which is what {@link JointDnn#decide} needs.
 * Created by {@link JointDnn#openCloud}; safe to share between threads.
 */
public final class Cloud implements AutoCloseable {
    /** A cloud run's result: the output frame (decode with {@link JointDnn#decodeFrame}) and its timings. */
    public static final class Reply {
        public final byte[] frame;
        /** {@code compute_ms, server_ms, wall_ms, up_ms, down_ms, bytes_up, bytes_down, attempts}. */
        public final JSONObject info;

        Reply(byte[] frame, JSONObject info) {
            this.frame = frame;
            this.info = info;
        }
    }

    private final JointDnn sdk;
    private final int handle;
    private boolean closed;

    Cloud(JointDnn sdk, int handle) {
        this.sdk = sdk;
        this.handle = handle;
    }

    /**
     * Runs layers {@code first..last} of {@code model} on the server. {@code frame} holds the run's
     * input tensors ({@link JointDnn#encodeFrame}); the reply's frame holds its outputs.
     */
    public Reply infer(String model, int first, int last, byte[] frame) {
        return infer(model, first, last, frame, "auto", null, null);
    }

    /** Full form: the reply's codec, optional lossy quantization bits, and a deadline in seconds. */
    public Reply infer(String model, int first, int last, byte[] frame, String codec, Integer quantizeBits,
                       Double deadlineS) {
        check();
        List<PyObject> parts = sdk.call("cloud_infer", handle, model, first, last, frame, codec, quantizeBits,
                deadlineS).asList();
        try {
            return new Reply(parts.get(0).toJava(byte[].class), new JSONObject(parts.get(1).toString()));
        } catch (JSONException e) {
            throw JointDnn.badReply("cloud_infer", e);
        }
    }

    /**
     * The link as measured so far: {@code up_mbps}, {@code down_mbps}, {@code rtt_ms} (null until
     * measured), {@code available} (false while the cloud is marked down), {@code down_for_s}.
     */
    public JSONObject estimate() {
        check();
        try {
            return new JSONObject(sdk.call("cloud_estimate", handle).toString());
        } catch (JSONException e) {
            throw JointDnn.badReply("cloud_estimate", e);
        }
    }

    /** Closes the connections; later calls fail. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            sdk.call("close_cloud", handle);
        }
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("cloud client " + handle + " is closed");
        }
    }
}
