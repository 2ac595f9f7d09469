package io.jointdnn.edge;

import org.json.JSONException;
import org.json.JSONObject;

import java.util.List;

/**
 * Full mode: one model split between this device and a cloud server, re-planned on every
 * {@link #run}. Created by {@link JointDnn#openSession}; not thread-safe (one inference at a time).
 */
public final class Session implements AutoCloseable {
    private final JointDnn sdk;
    private final int handle;
    private boolean closed;

    Session(JointDnn sdk, int handle) {
        this.sdk = sdk;
        this.handle = handle;
    }

    /** The bridge's handle of this session. */
    public int handle() {
        return handle;
    }

    /** One split inference: the model's inputs in, its outputs out (by name, in model order). */
    public List<Tensor> run(List<Tensor> inputs) {
        check();
        return JointDnn.tensors("run",
                sdk.call("run", handle, JointDnn.describe(inputs), JointDnn.buffers(inputs)));
    }

    /**
     * What the last {@link #run} did: the schedule, the measured network, timings per step and the
     * bytes sent (JSON; null before the first run).
     */
    public JSONObject lastTrace() {
        check();
        Object reply = sdk.call("last_trace", handle);
        if (reply == null) {
            return null;
        }
        try {
            return new JSONObject(reply.toString());
        } catch (JSONException e) {
            throw JointDnn.badReply("last_trace", e);
        }
    }

    /** Releases the model and the connection; later calls fail. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            sdk.call("close_session", handle);
        }
    }

    private void check() {
        if (closed) {
            throw new IllegalStateException("session " + handle + " is closed");
        }
    }
}
