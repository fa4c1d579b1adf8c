package cardsuite.simbridge.gp;

import java.util.ArrayList;
import java.util.List;

/** GET STATUS response entries (GP Card Spec §11.4.3): TLV format (E3 templates) or the GP 2.1.1 format. */
final class Status {
    private Status() {
    }

    static List<byte[]> entries(int p1, byte[] prefix, boolean tlv, Registry registry, int cardLifeCycle,
                                byte[] isdPrivileges) {
        List<byte[]> entries = new ArrayList<>();
        byte[] isd = CardManager.ISD_AID;
        if (p1 == 0x80) {
            if (Registry.startsWith(isd, prefix)) {
                entries.add(tlv ? Tlv.encode(0xE3, Tlv.encode(0x4F, isd), lifeCycle(cardLifeCycle),
                        Tlv.encode(0xC5, isdPrivileges)) : legacy(isd, cardLifeCycle, isdPrivileges[0]));
            }
        } else if (p1 == 0x40) {
            for (Registry.Application app : registry.applications()) {
                if (Registry.startsWith(app.aid, prefix)) {
                    entries.add(tlv ? application(app, isd) : legacy(app.aid, app.lifeCycle, app.privileges[0]));
                }
            }
        } else {
            for (Registry.LoadFile file : registry.loadFiles()) {
                if (Registry.startsWith(file.aid, prefix)) {
                    entries.add(tlv ? loadFile(file, isd, p1 == 0x10) : legacyLoadFile(file, p1 == 0x10));
                }
            }
        }
        return entries;
    }

    /** Table 11-36: 4F AID, 9F70 life cycle, C5 privileges, C4 its load file, CC its security domain. */
    private static byte[] application(Registry.Application app, byte[] isd) {
        byte[] loadFile = app.loadFile == null ? new byte[0] : Tlv.encode(0xC4, app.loadFile);
        return Tlv.encode(0xE3, Tlv.encode(0x4F, app.aid), lifeCycle(app.lifeCycle), Tlv.encode(0xC5, app.privileges),
                loadFile, Tlv.encode(0xCC, app.domain == null ? isd : app.domain));
    }

    /** Table 11-36: 4F AID, 9F70 LOADED, CE version, CC security domain, 84 each module (P1 10). */
    private static byte[] loadFile(Registry.LoadFile file, byte[] isd, boolean modules) {
        byte[] body = Bytes.concat(Tlv.encode(0x4F, file.aid), lifeCycle(Registry.LOADED),
                Tlv.encode(0xCE, new byte[] {(byte) file.major, (byte) file.minor}),
                Tlv.encode(0xCC, file.domain == null ? isd : file.domain));
        if (modules) {
            for (byte[] module : file.modules) {
                body = Bytes.concat(body, Tlv.encode(0x84, module));
            }
        }
        return Tlv.encode(0xE3, body);
    }

    private static byte[] lifeCycle(int state) {
        return Tlv.encode(0x9F70, new byte[] {(byte) state});
    }

    /** Table 11-34: length, AID, life cycle, privileges (one byte). */
    private static byte[] legacy(byte[] aid, int state, byte privileges) {
        return Bytes.concat(new byte[] {(byte) aid.length}, aid, new byte[] {(byte) state, privileges});
    }

    /** Table 11-35: as above, then (P1 10) the number of modules and each module's length and AID. */
    private static byte[] legacyLoadFile(Registry.LoadFile file, boolean modules) {
        byte[] entry = legacy(file.aid, Registry.LOADED, (byte) 0);
        if (modules) {
            entry = Bytes.concat(entry, new byte[] {(byte) file.modules.size()});
            for (byte[] module : file.modules) {
                entry = Bytes.concat(entry, new byte[] {(byte) module.length}, module);
            }
        }
        return entry;
    }
}
