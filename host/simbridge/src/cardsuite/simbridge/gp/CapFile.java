package cardsuite.simbridge.gp;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.List;

/**
 * What the card manager reads from a Load File Data Block: the Java Card CAP components (JCVM Spec 3.0.5 §6) as
 * LOAD delivers them, inside tag C4 (GP Card Spec §11.6.2.3; {@link Dap} reads the Load File around it). Only
 * three components matter to a card that runs the build's classes: Header (tag 1: magic DECAFFED, CAP version, the
 * package version and AID), Import (tag 4: the packages it links against) and Applet (tag 3: the applet AIDs).
 */
public final class CapFile {
    private static final int HEADER = 1;
    private static final int APPLET = 3;
    private static final int IMPORT = 4;
    private static final byte[] MAGIC = {(byte) 0xDE, (byte) 0xCA, (byte) 0xFF, (byte) 0xED};

    /** An imported package: AID and the version the CAP was converted against. */
    public static final class PackageRef {
        public final byte[] aid;
        public final int major;
        public final int minor;

        PackageRef(byte[] aid, int major, int minor) {
            this.aid = aid;
            this.major = major;
            this.minor = minor;
        }

        @Override
        public String toString() {
            return Bytes.hex(aid) + " " + major + "." + minor;
        }
    }

    public final PackageRef pkg;
    public final List<byte[]> appletAids;
    public final List<PackageRef> imports;

    private CapFile(PackageRef pkg, List<byte[]> appletAids, List<PackageRef> imports) {
        this.pkg = pkg;
        this.appletAids = Collections.unmodifiableList(appletAids);
        this.imports = Collections.unmodifiableList(imports);
    }

    /** Parses concatenated CAP components (tag u1, size u2, info). */
    public static CapFile parseComponents(byte[] components) {
        PackageRef pkg = null;
        List<byte[]> applets = new ArrayList<>();
        List<PackageRef> imports = new ArrayList<>();
        int at = 0;
        while (at < components.length) {
            require(at + 3 <= components.length, "truncated component header");
            int tag = components[at] & 0xFF;
            int size = (components[at + 1] & 0xFF) << 8 | (components[at + 2] & 0xFF);
            require(at + 3 + size <= components.length, "component " + tag + " runs past the end");
            byte[] info = Arrays.copyOfRange(components, at + 3, at + 3 + size);
            at += 3 + size;
            if (tag == HEADER) {
                pkg = header(info);
            } else if (tag == APPLET) {
                applets = applets(info);
            } else if (tag == IMPORT) {
                imports = imports(info);
            }
        }
        require(pkg != null, "no Header component");
        return new CapFile(pkg, applets, imports);
    }

    /** Header: magic u4, minor u1, major u1, flags u1, package_info {minor, major, AID_length, AID}. */
    private static PackageRef header(byte[] info) {
        require(info.length >= 10 && Arrays.equals(Arrays.copyOf(info, 4), MAGIC), "bad Header component");
        require((info[5] & 0xFF) == 2, "CAP format " + info[5] + "." + info[4] + " (this card reads 2.x)");
        return packageInfo(info, 7);
    }

    /** Applet: count u1, then {AID_length u1, AID, install_method_offset u2}. */
    private static List<byte[]> applets(byte[] info) {
        List<byte[]> aids = new ArrayList<>();
        require(info.length >= 1, "empty Applet component");
        int at = 1;
        for (int i = 0; i < (info[0] & 0xFF); i++) {
            require(at < info.length, "truncated Applet component");
            int length = info[at] & 0xFF;
            require(length >= 5 && length <= 16 && at + 1 + length + 2 <= info.length, "bad applet AID");
            aids.add(Arrays.copyOfRange(info, at + 1, at + 1 + length));
            at += 1 + length + 2;
        }
        return aids;
    }

    /** Import: count u1, then package_info {minor, major, AID_length, AID}. */
    private static List<PackageRef> imports(byte[] info) {
        List<PackageRef> refs = new ArrayList<>();
        require(info.length >= 1, "empty Import component");
        int at = 1;
        for (int i = 0; i < (info[0] & 0xFF); i++) {
            PackageRef ref = packageInfo(info, at);
            refs.add(ref);
            at += 3 + ref.aid.length;
        }
        return refs;
    }

    private static PackageRef packageInfo(byte[] info, int at) {
        require(at + 3 <= info.length, "truncated package info");
        int length = info[at + 2] & 0xFF;
        require(length >= 5 && length <= 16 && at + 3 + length <= info.length, "bad package AID");
        return new PackageRef(Arrays.copyOfRange(info, at + 3, at + 3 + length), info[at + 1] & 0xFF,
                info[at] & 0xFF);
    }

    private static void require(boolean ok, String why) {
        if (!ok) {
            throw new GpException(Sw.WRONG_DATA, why);
        }
    }
}
