package io.jointdnn.edge;

import org.json.JSONArray;
import org.json.JSONException;
import org.json.JSONObject;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;

/**
 * Where each layer runs for one inference, and what that costs (the JSON of
 * {@code jointdnn_edge.android.decide}).
 *
 * <p>{@link #segments} are the planner's groups in layer order; {@link #runs} merges adjacent
 * groups on the same platform, so a plan-only app runs each mobile run as one TFLite slice and
 * sends the tensors at each change of platform.
 */
public final class Schedule {
    /** Layers {@code first..last} (inclusive) on {@code platform} ("mobile" or "cloud"). */
    public static final class Segment {
        public final int first;
        public final int last;
        public final String platform;

        public Segment(int first, int last, String platform) {
            this.first = first;
            this.last = last;
            this.platform = platform;
        }

        public boolean onMobile() {
            return "mobile".equals(platform);
        }

        @Override
        public String toString() {
            return platform + " " + first + ".." + last;
        }
    }

    public final List<Segment> segments;
    public final List<Segment> runs;
    /** Run pattern, e.g. {@code "mobile-cloud"}. */
    public final String pattern;
    public final double latencyMs;
    public final double mobileEnergyMj;
    public final double cloudMs;
    public final double bytesUp;
    public final double bytesDown;
    public final int transfers;
    public final int switches;
    /** "latency" or "energy". */
    public final String objective;
    /** False only for a lookup-table answer outside the table's exact region without an embedded cost table. */
    public final boolean exact;
    /** What computed it: "native", "python", "lut", "lut/native", "lut/python". */
    public final String solver;
    /** "lut" (lookup table) or "plan" (exact plan on a cost table). */
    public final String source;
    /** The JSON this was parsed from. */
    public final String json;

    private Schedule(JSONObject o, String json) throws JSONException {
        this.segments = segmentList(o.getJSONArray("segments"));
        this.runs = segmentList(o.getJSONArray("runs"));
        this.pattern = o.getString("pattern");
        this.latencyMs = o.getDouble("latency_ms");
        this.mobileEnergyMj = o.getDouble("mobile_energy_mj");
        this.cloudMs = o.getDouble("cloud_ms");
        this.bytesUp = o.getDouble("bytes_up");
        this.bytesDown = o.getDouble("bytes_down");
        this.transfers = o.getInt("transfers");
        this.switches = o.getInt("switches");
        this.objective = o.isNull("objective") ? null : o.getString("objective");
        this.exact = o.getBoolean("exact");
        this.solver = o.getString("solver");
        this.source = o.getString("source");
        this.json = json;
    }

    /** Parses the JSON {@code decide} returns. */
    public static Schedule fromJson(String json) throws JSONException {
        return new Schedule(new JSONObject(json), json);
    }

    /** The runs on the mobile, in order: the TFLite slices this inference executes on the device. */
    public List<Segment> mobileRuns() {
        List<Segment> out = new ArrayList<>();
        for (Segment s : runs) {
            if (s.onMobile()) {
                out.add(s);
            }
        }
        return out;
    }

    /** True when every layer runs on the device (no network needed). */
    public boolean allMobile() {
        return runs.size() == 1 && runs.get(0).onMobile();
    }

    @Override
    public String toString() {
        return runs + String.format(" %.3f ms, %.3f mJ", latencyMs, mobileEnergyMj);
    }

    private static List<Segment> segmentList(JSONArray a) throws JSONException {
        List<Segment> out = new ArrayList<>(a.length());
        for (int i = 0; i < a.length(); i++) {
            JSONArray s = a.getJSONArray(i);
            out.add(new Segment(s.getInt(0), s.getInt(1), s.getString(2)));
        }
        return Collections.unmodifiableList(out);
    }
}
