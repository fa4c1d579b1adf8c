package cardsuite.isocmd;

import cardsuite.isofs.CyclicRecordFile;
import cardsuite.isofs.DedicatedFile;
import cardsuite.isofs.ISOFile;
import cardsuite.isofs.RecordFile;
import cardsuite.isofs.TransparentFile;
import javacard.framework.AID;
import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * ISO 7816-4 command processor over one tree. An applet hands it its APDUs ({@link #process}); it
 * keeps the current DF, current EF and record pointer in transient memory and checks each file's life
 * cycle and access conditions (through the applet's {@link SecurityStatus}) before touching it.
 *
 * Order of checks in every command: P1-P2 format (6A86) → file (6986 no current EF, 6A82 not found)
 * → structure (6981) → life cycle (6985) → access condition (6982) → offset or record (6B00, 6A83)
 * → length (6700) → space (6A84). The limits on CREATE FILE (file count, data bytes) are the ones
 * the applet passes to the constructor.
 *
 * The current DF, current EF and record pointer change only when a command completes (ISO 7816-4
 * 7.3.1: "if the process is completed, then the identified EF becomes current and the record pointer
 * is reset"): an error, 6Cxx included, leaves them as they were, so that the re-sent command finds
 * the same file and record; a warning (6282, 6283, 6285) completes the command.
 */
public class FileSystem implements SharedFiles {
    private static final short LE_ANY = 256; // Le = 00 in a short APDU: "as much as there is"
    /** Proprietary FCP object of a DF listing its children's file identifiers (see childList). */
    private static final byte TAG_CHILDREN = (byte) 0x85;
    /** FCP object: security attributes in ISO 7816-4's compact format (AM byte, SC bytes). */
    private static final byte TAG_COMPACT = (byte) 0x8C;
    // AM byte (b8 = 0): one SC byte follows for each bit set, from b7 down to b1 (EF and DF codings).
    private static final byte AM_DELETE_SELF = (byte) 0x40;
    private static final byte AM_TERMINATE = (byte) 0x20;
    private static final byte AM_ACTIVATE = (byte) 0x10;
    private static final byte AM_DEACTIVATE = (byte) 0x08;
    private static final byte AM_EF_WRITE_APPEND = (byte) 0x04; // WRITE BINARY / RECORD, APPEND RECORD
    private static final byte AM_EF_UPDATE_ERASE = (byte) 0x02; // UPDATE BINARY / RECORD, ERASE BINARY
    private static final byte AM_EF_READ_SEARCH = (byte) 0x01; // READ BINARY / RECORD, SEARCH RECORD
    private static final byte AM_DF_CREATE_DF = (byte) 0x04;
    private static final byte AM_DF_CREATE_EF = (byte) 0x02;
    // SC byte: 00 always, FF never; b5 user authentication, b4-b1 the security environment.
    private static final byte SC_ALWAYS = (byte) 0x00;
    private static final byte SC_NEVER = (byte) 0xFF;
    private static final byte SC_USER_AUTHENTICATION = (byte) 0x10;
    private static final byte SC_SE_LAST = (byte) 0x0E;

    private final DedicatedFile root;
    private final SecurityStatus security;
    private final short maxFiles;
    private final short maxBytes;
    /** [0] current DF (null: the root), [1] current EF (null: none). */
    private final Object[] current;
    /** [0] record pointer of the current EF (0: none). */
    private final byte[] pointer;

    /**
     * A processor whose view starts at root (SELECT 3F00 selects it). maxFiles and maxBytes bound the
     * whole tree (files counted with the MF, bytes of EF data) for CREATE FILE. clearEvent is
     * JCSystem.CLEAR_ON_DESELECT for the applet's own use, CLEAR_ON_RESET for a processor handed to
     * other applets as {@link SharedFiles}. Allocates its transient state here, once.
     */
    public FileSystem(DedicatedFile root, SecurityStatus security, short maxFiles, short maxBytes,
            byte clearEvent) {
        this.root = root;
        this.security = security;
        this.maxFiles = maxFiles;
        this.maxBytes = maxBytes;
        current = JCSystem.makeTransientObjectArray((short) 2, clearEvent);
        pointer = JCSystem.makeTransientByteArray((short) 1, clearEvent);
    }

    /** The current DF. */
    public DedicatedFile getCurrentDF() {
        Object o = current[0];
        return o == null ? root : (DedicatedFile) o;
    }

    /** The current EF, or null. */
    public ISOFile getCurrentEF() {
        return (ISOFile) current[1];
    }

    /**
     * Processes one file command (INS A4, B0, D6, D0, 0E, B2, DC, D2, E2, A2, E0, E4, 44, 04, E6,
     * E8). Returns false, sending nothing, for any other INS. The caller checks CLA.
     */
    public boolean process(APDU apdu) {
        byte ins = apdu.getBuffer()[ISO7816.OFFSET_INS];
        switch (ins) {
            case ISOCMD.INS_SELECT:
                select(apdu);
                break;
            case ISOCMD.INS_READ_BINARY:
                readBinary(apdu);
                break;
            case ISOCMD.INS_UPDATE_BINARY:
            case ISOCMD.INS_WRITE_BINARY:
            case ISOCMD.INS_ERASE_BINARY:
                updateBinary(apdu, ins);
                break;
            case ISOCMD.INS_READ_RECORD:
                readRecord(apdu);
                break;
            case ISOCMD.INS_UPDATE_RECORD:
            case ISOCMD.INS_WRITE_RECORD:
                updateRecord(apdu, ins);
                break;
            case ISOCMD.INS_APPEND_RECORD:
                appendRecord(apdu);
                break;
            case ISOCMD.INS_SEARCH_RECORD:
                searchRecord(apdu);
                break;
            case ISOCMD.INS_CREATE_FILE:
                FileFactory.create(this, apdu);
                break;
            case ISOCMD.INS_DELETE_FILE:
                deleteFile(apdu);
                break;
            case ISOCMD.INS_ACTIVATE_FILE:
            case ISOCMD.INS_DEACTIVATE_FILE:
            case ISOCMD.INS_TERMINATE_DF:
            case ISOCMD.INS_TERMINATE_EF:
                lifeCycle(apdu, ins);
                break;
            default:
                return false;
        }
        return true;
    }

    /**
     * Answers the SELECT by AID that selected the applet (call it when Applet.selectingApplet()): the
     * root of this view is the current DF with no current EF, and P2 b4-b3 ask, as in any SELECT, for
     * its FCI (00), FCP (04), FMD (08) or nothing (0C). There the root's DF name (84) is the applet's
     * AID, so that a generic client sees which application it entered (ISO 7816-4 7.1.1, 8.2.1.1).
     * Le absent: no data; Le shorter than the template: 6Cxx.
     */
    public void selectApplication(APDU apdu) {
        receive(apdu, true);
        current[0] = null;
        current[1] = null;
        pointer[0] = 0;
        byte[] buf = apdu.getBuffer();
        byte response = (byte) (buf[ISO7816.OFFSET_P2] & ISOCMD.SELECT_P2_RESPONSE);
        sendBuffer(apdu, template(root, response, buf, true));
    }

    // ---- SELECT (ISO 7816-4 7.1.1, P1 table 39, P2 table 40) ----

    private void select(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte p2 = buf[ISO7816.OFFSET_P2];
        short len = receive(apdu, true);
        byte occurrence = (byte) (p2 & ISOCMD.SELECT_P2_OCCURRENCE);
        // Only a DF name can have a next occurrence; last and previous are not supported.
        if ((p2 & ISOCMD.SELECT_P2_RFU) != 0 || (occurrence != ISOCMD.SELECT_OCCURRENCE_FIRST
                && (p1 != ISOCMD.SELECT_P1_DF_NAME || occurrence != ISOCMD.SELECT_OCCURRENCE_NEXT))) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        DedicatedFile df = getCurrentDF();
        short id = len == 2 ? Util.getShort(buf, ISO7816.OFFSET_CDATA) : 0;
        ISOFile f = null;
        switch (p1) {
            case ISOCMD.SELECT_P1_FID: // no data: the MF
                if (len == 0) {
                    f = root;
                } else {
                    lengthIs(len, (short) 2);
                    f = findNear(df, id);
                }
                break;
            case ISOCMD.SELECT_P1_CHILD_DF:
            case ISOCMD.SELECT_P1_CHILD_EF: // under the current DF
                lengthIs(len, (short) 2);
                f = df.findChild(id);
                if (f != null && (f instanceof DedicatedFile) != (p1 == ISOCMD.SELECT_P1_CHILD_DF)) {
                    f = null;
                }
                break;
            case ISOCMD.SELECT_P1_PARENT_DF:
                lengthIs(len, (short) 0);
                if (df != root) {
                    f = df.getParent();
                }
                break;
            case ISOCMD.SELECT_P1_DF_NAME: // first or next occurrence
                if (len == 0 || len > 16) {
                    ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
                }
                f = occurrence == ISOCMD.SELECT_OCCURRENCE_FIRST ? root : ISOFile.next(df, root);
                while (f != null && !nameStarts(f, buf, len)) {
                    f = ISOFile.next(f, root);
                }
                break;
            case ISOCMD.SELECT_P1_PATH_FROM_MF: // without 3F00
                f = walk(root, buf, len);
                break;
            case ISOCMD.SELECT_P1_PATH_FROM_DF:
                f = walk(df, buf, len);
                break;
            default:
                ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        if (f == null || f.getLifeCycle() == ISOCMD.LCS_DELETED) {
            ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
        }
        // The answer first: a 6Cxx for it must leave the selection as it was.
        short n = template(f, (byte) (p2 & ISOCMD.SELECT_P2_RESPONSE), buf, false);
        short ne = apdu.setOutgoing();
        if (ne != 0 && ne < n) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | n));
        }
        makeCurrent(f);
        if (ne != 0 && n != 0) {
            sendData(apdu, buf, (short) 0, n, LE_ANY);
        }
        if (f.getLifeCycle() == ISOCMD.LCS_DEACTIVATED) {
            ISOException.throwIt(ISOCMD.SW_SELECTED_DEACTIVATED);
        }
        if (f.getLifeCycle() >= ISOCMD.LCS_TERMINATED) {
            ISOException.throwIt(ISOCMD.SW_SELECTED_TERMINATED);
        }
    }

    /** P1 = 00: the MF, the current DF, a child of it, its parent or a sibling of it. */
    private ISOFile findNear(DedicatedFile df, short id) {
        if (id == ISOCMD.FID_MF) {
            return root;
        }
        if (id == df.getFID()) {
            return df;
        }
        ISOFile f = df.findChild(id);
        if (f == null && df != root) {
            DedicatedFile up = df.getParent();
            f = up.getFID() == id ? up : up.findChild(id);
        }
        return f;
    }

    private static boolean nameStarts(ISOFile f, byte[] buf, short len) {
        if (!(f instanceof DedicatedFile)) {
            return false;
        }
        byte[] name = ((DedicatedFile) f).getName();
        return name != null && len <= (short) name.length
                && Util.arrayCompare(name, (short) 0, buf, ISO7816.OFFSET_CDATA, len) == 0;
    }

    /** Follows a path of file identifiers below start; null when a step is missing. */
    private static ISOFile walk(DedicatedFile start, byte[] buf, short len) {
        if (len == 0 || (len & 1) != 0) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        ISOFile f = start;
        for (short i = 0; i < len; i += 2) {
            if (!(f instanceof DedicatedFile)) {
                return null;
            }
            f = ((DedicatedFile) f).findChild(Util.getShort(buf, (short) (ISO7816.OFFSET_CDATA + i)));
        }
        return f;
    }

    /**
     * Writes at the start of buf what SELECT returns for response (P2 b4-b3): FCI 6F or FCP 62 with the
     * control parameters, FMD 64 with the DF name, nothing for 0C; returns its length. application: f
     * is the root answering the applet's selection (its DF name is the applet's AID).
     */
    private short template(ISOFile f, byte response, byte[] buf, boolean application) {
        if (response == ISOCMD.SELECT_RESPONSE_NONE) {
            return 0;
        }
        short n;
        short head = 2; // 62 nn, or 62 81 nn for 128 bytes and more
        byte tag = ISOCMD.TAG_FMD;
        if (response == ISOCMD.SELECT_RESPONSE_FMD) {
            n = (short) (nameObject(f, buf, (short) 2, application) - 2);
        } else {
            tag = response == ISOCMD.SELECT_RESPONSE_FCI ? ISOCMD.TAG_FCI : ISOCMD.TAG_FCP;
            // Written after room for the longer header, moved down a byte when the short one fits.
            n = controlParameters(f, buf, (short) 3, application);
            if (n < 128) {
                Util.arrayCopyNonAtomic(buf, (short) 3, buf, (short) 2, n);
            } else {
                buf[1] = (byte) 0x81;
                head = 3;
            }
        }
        buf[0] = tag;
        buf[(short) (head - 1)] = (byte) n;
        return (short) (n + head);
    }

    /** Makes f the current file: a DF becomes the current DF, an EF the current EF (in its DF). */
    void makeCurrent(ISOFile f) {
        if (f instanceof DedicatedFile) {
            current[0] = f;
            current[1] = null;
        } else {
            current[0] = f.getParent();
            current[1] = f;
        }
        pointer[0] = 0;
    }

    /** Writes the FCP data objects of f at off; returns their length. */
    private short controlParameters(ISOFile f, byte[] buf, short off, boolean application) {
        short start = off;
        boolean ef = f.getData() != null;
        if (ef) {
            off = tlvShort(buf, off, ISOCMD.TAG_SIZE, f.getSize());
        }
        buf[off++] = ISOCMD.TAG_DESCRIPTOR;
        if (f instanceof RecordFile) {
            RecordFile r = (RecordFile) f;
            buf[off++] = 5;
            buf[off++] = f.getDescriptor();
            buf[off++] = ISOCMD.DCB;
            off = Util.setShort(buf, off, r.getRecordSize());
            buf[off++] = r.getRecordCount();
        } else if (ef) {
            buf[off++] = 2;
            buf[off++] = f.getDescriptor();
            buf[off++] = ISOCMD.DCB;
        } else {
            buf[off++] = 1;
            buf[off++] = f.getDescriptor();
        }
        off = tlvShort(buf, off, ISOCMD.TAG_FID, f.getFID());
        off = nameObject(f, buf, off, application);
        if (ef) {
            buf[off++] = ISOCMD.TAG_SFI;
            if (f.getSFI() == 0) {
                buf[off++] = 0;
            } else {
                buf[off++] = 1;
                buf[off++] = (byte) (f.getSFI() << 3);
            }
        }
        buf[off++] = ISOCMD.TAG_LCS;
        buf[off++] = 1;
        buf[off++] = f.getLifeCycle();
        buf[off++] = ISOCMD.TAG_SECURITY;
        buf[off++] = ISOCMD.AC_COUNT;
        for (byte i = 0; i < ISOCMD.AC_COUNT; i++) {
            buf[off++] = f.getAccess(i);
        }
        off = compactSecurity(f, ef, buf, off);
        if (!ef) {
            off = childList((DedicatedFile) f, buf, off);
        }
        return (short) (off - start);
    }

    /**
     * Proprietary tag 85 of a DF's FCP: the file identifiers of its children in creation order, so
     * that a host can walk the tree (ISO 7816-4 has no command to list a DF). Lists as many as fit a
     * 256-byte response (at least 100 children); an empty DF gets 85 00.
     */
    private static short childList(DedicatedFile df, byte[] buf, short off) {
        short room = (short) ((short) ((buf.length < 256 ? buf.length : 256) - off - 3) / 2);
        short k = 0;
        for (ISOFile c = df.getFirstChild(); c != null && k < room; c = c.getSibling()) {
            k++;
        }
        buf[off++] = TAG_CHILDREN;
        if (k > 63) {
            buf[off++] = (byte) 0x81;
        }
        buf[off++] = (byte) (k * 2);
        for (ISOFile c = df.getFirstChild(); k > 0; c = c.getSibling(), k--) {
            off = Util.setShort(buf, off, c.getFID());
        }
        return off;
    }

    /**
     * The conditions of tag 86 again in ISO 7816-4's compact form (8C), for generic clients: the AM
     * byte then the SC bytes from b7 down. EF: delete, terminate, activate, deactivate (the admin
     * condition for all three), write/append, update/erase, read; b3 is left out when WRITE (which
     * needs the update condition here) and APPEND differ, since one SC byte cannot say both. DF: delete,
     * the three admin ones, create DF and create EF (the append condition). A reference r becomes
     * "user authentication in security environment r" (10 | r; 10 alone for references above 0E).
     */
    private static short compactSecurity(ISOFile f, boolean ef, byte[] buf, short off) {
        short start = off;
        buf[off] = TAG_COMPACT;
        off += 2;
        short mode = off++;
        byte admin = securityCondition(f.getAccess(ISOCMD.AC_ADMIN));
        byte append = f.getAccess(ISOCMD.AC_APPEND);
        byte update = f.getAccess(ISOCMD.AC_UPDATE);
        byte am = (byte) (AM_DELETE_SELF | AM_TERMINATE | AM_ACTIVATE | AM_DEACTIVATE);
        buf[off++] = securityCondition(f.getAccess(ISOCMD.AC_DELETE));
        buf[off++] = admin;
        buf[off++] = admin;
        buf[off++] = admin;
        if (ef) {
            if (update == append) {
                am |= AM_EF_WRITE_APPEND;
                buf[off++] = securityCondition(append);
            }
            am |= (byte) (AM_EF_UPDATE_ERASE | AM_EF_READ_SEARCH);
            buf[off++] = securityCondition(update);
            buf[off++] = securityCondition(f.getAccess(ISOCMD.AC_READ));
        } else {
            am |= (byte) (AM_DF_CREATE_DF | AM_DF_CREATE_EF);
            buf[off++] = securityCondition(append);
            buf[off++] = securityCondition(append);
        }
        buf[mode] = am;
        buf[(short) (start + 1)] = (byte) (off - start - 2);
        return off;
    }

    /** The SC byte of a condition: always, never, or user authentication under the reference as SE. */
    private static byte securityCondition(byte condition) {
        if (condition == ISOCMD.AC_ALWAYS || condition == ISOCMD.AC_NEVER) {
            return condition == ISOCMD.AC_ALWAYS ? SC_ALWAYS : SC_NEVER;
        }
        return (byte) (SC_USER_AUTHENTICATION | (condition > 0 && condition <= SC_SE_LAST ? condition : 0));
    }

    /**
     * Writes tag 84 with the DF name of f, if it has one, or with the applet's AID for the root answering
     * the applet's selection; returns the new offset.
     */
    private static short nameObject(ISOFile f, byte[] buf, short off, boolean application) {
        if (application) {
            AID aid = JCSystem.getAID();
            buf[off] = ISOCMD.TAG_DF_NAME;
            byte len = aid.getBytes(buf, (short) (off + 2));
            buf[(short) (off + 1)] = len;
            return (short) (off + 2 + len);
        }
        if (f instanceof DedicatedFile) {
            byte[] name = ((DedicatedFile) f).getName();
            if (name != null) {
                buf[off++] = ISOCMD.TAG_DF_NAME;
                buf[off++] = (byte) name.length;
                off = Util.arrayCopyNonAtomic(name, (short) 0, buf, off, (short) name.length);
            }
        }
        return off;
    }

    private static short tlvShort(byte[] buf, short off, byte tag, short value) {
        buf[off++] = tag;
        buf[off++] = 2;
        return Util.setShort(buf, off, value);
    }

    // ---- READ / UPDATE / WRITE / ERASE BINARY (7.2.3 - 7.2.7) ----

    private void readBinary(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        short start = startPointer(binarySFI(buf));
        TransparentFile f = binaryFile(buf, ISOCMD.AC_READ);
        short off = binaryOffset(buf);
        short n = f.available(off);
        short ne = apdu.setOutgoing();
        if (ne == 0) { // Le absent: say how much there is (00 = 256 or more)
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | (n > 255 ? 0 : n)));
        }
        if (n > ne) {
            n = ne;
        }
        complete(f, start);
        sendData(apdu, f.getData(), off, n, ne);
    }

    private void updateBinary(APDU apdu, byte ins) {
        byte[] buf = apdu.getBuffer();
        short start = startPointer(binarySFI(buf));
        TransparentFile f = binaryFile(buf, ISOCMD.AC_UPDATE);
        short off = binaryOffset(buf);
        short len = receive(apdu, ins == ISOCMD.INS_ERASE_BINARY);
        short end = f.getSize();
        if (ins == ISOCMD.INS_ERASE_BINARY) {
            // Data absent: erase to the end; else two bytes, the offset of the first byte kept.
            if (len != 0) {
                lengthIs(len, (short) 2);
                end = Util.getShort(buf, ISO7816.OFFSET_CDATA);
            }
            if (end <= off || end > f.getSize()) {
                f.available(off); // 6B00 when off is outside the file
                ISOException.throwIt(ISO7816.SW_WRONG_DATA);
            }
            len = (short) (end - off);
            short chunk = (short) buf.length;
            if ((short) (len + 64) > JCSystem.getUnusedCommitCapacity()) {
                ISOException.throwIt(ISO7816.SW_FILE_FULL);
            }
            Util.arrayFillNonAtomic(buf, (short) 0, chunk, (byte) 0);
            boolean own = ISOFile.beginAtomic();
            while (len > 0) {
                short n = len < chunk ? len : chunk;
                f.updateBinary(off, buf, (short) 0, n);
                off += n;
                len -= n;
            }
            ISOFile.endAtomic(own);
            complete(f, start);
            return;
        }
        if (len > f.available(off)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        if (ins == ISOCMD.INS_WRITE_BINARY) {
            orInto(buf, f.getData(), off, len);
        }
        f.updateBinary(off, buf, ISO7816.OFFSET_CDATA, len);
        complete(f, start);
    }

    /** The SFI of a binary command: P1 b5-b1 when b8 is set, else 0 (the current EF). */
    private static byte binarySFI(byte[] buf) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        return (p1 & ISOCMD.BINARY_P1_SFI) != 0 ? (byte) (p1 & ISOCMD.SFI_MASK) : 0;
    }

    /** P1 b8 = 1: SFI in P1 b5-b1, offset P2; else offset P1-P2 (15 bits) in the current EF. */
    private TransparentFile binaryFile(byte[] buf, byte operation) {
        byte p1 = buf[ISO7816.OFFSET_P1];
        if ((p1 & ISOCMD.BINARY_P1_SFI) != 0 && (p1 & ISOCMD.BINARY_P1_RFU) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        ISOFile f = namedEF(binarySFI(buf));
        if (!(f instanceof TransparentFile)) {
            ISOException.throwIt(ISOCMD.SW_COMMAND_INCOMPATIBLE);
        }
        check(f, operation);
        return (TransparentFile) f;
    }

    private static short binaryOffset(byte[] buf) {
        return (buf[ISO7816.OFFSET_P1] & ISOCMD.BINARY_P1_SFI) != 0 ? (short) (buf[ISO7816.OFFSET_P2] & 0xFF)
                : Util.getShort(buf, ISO7816.OFFSET_P1);
    }

    /** ORs len stored bytes from data[off] into the command data (WRITE = logical OR, DCB 41). */
    private static void orInto(byte[] buf, byte[] data, short off, short len) {
        for (short i = 0; i < len; i++) {
            buf[(short) (ISO7816.OFFSET_CDATA + i)] |= data[(short) (off + i)];
        }
    }

    // ---- READ RECORD(S), UPDATE / WRITE / APPEND / SEARCH RECORD (7.3.3 - 7.3.7) ----

    private void readRecord(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte mode = (byte) (buf[ISO7816.OFFSET_P2] & ISOCMD.RECORD_P2_MODE);
        short start = startPointer(recordSFI(buf));
        RecordFile f = recordFile(buf, ISOCMD.AC_READ);
        short ne = apdu.setOutgoing();
        if (mode == ISOCMD.RECORDS_FROM_P1 || mode == ISOCMD.RECORDS_TO_P1) {
            // READ RECORDS: from P1 to the last (101) or from the last to P1 (110), each in tag 04.
            if (ne == 0) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
            short n = recordNumber(f, p1, ISOCMD.RECORD_NUMBER, start);
            short last = (short) (f.getRecordCount() & 0xFF);
            short step = 1;
            if (mode == ISOCMD.RECORDS_TO_P1) {
                short t = n;
                n = last;
                last = t;
                step = -1;
            }
            short limit = ne < (short) buf.length ? ne : (short) buf.length;
            short off = 0;
            boolean all = true;
            while (true) {
                short len = f.lengthOf(n);
                short head = len > 127 ? (short) 3 : (short) 2;
                if ((short) (off + head + len) > limit) {
                    all = false;
                    break;
                }
                buf[off++] = ISOCMD.TAG_RECORD;
                if (head == 3) {
                    buf[off++] = (byte) 0x81;
                }
                buf[off++] = (byte) len;
                off = Util.arrayCopyNonAtomic(f.getData(), f.offsetOf(n), buf, off, len);
                if (n == last) {
                    break;
                }
                n += step;
            }
            complete(f, start);
            sendData(apdu, buf, (short) 0, off, all ? LE_ANY : ne);
            return;
        }
        short n = recordNumber(f, p1, mode, start);
        short len = f.lengthOf(n);
        if (ne < len) { // the pointer stays: the re-sent command reads the same record
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | len));
        }
        complete(f, moved(mode, n, start));
        sendData(apdu, f.getData(), f.offsetOf(n), len, ne);
    }

    private void updateRecord(APDU apdu, byte ins) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte mode = (byte) (buf[ISO7816.OFFSET_P2] & ISOCMD.RECORD_P2_MODE);
        short start = startPointer(recordSFI(buf));
        RecordFile f = recordFile(buf, ISOCMD.AC_UPDATE);
        if (ins == ISOCMD.INS_UPDATE_RECORD && mode == ISOCMD.RECORD_PREVIOUS && p1 == 0
                && f instanceof CyclicRecordFile) {
            // UPDATE RECORD "previous" on a cyclic EF writes the oldest record, which becomes record 1.
            f.appendRecord(buf, ISO7816.OFFSET_CDATA, receive(apdu, false));
            complete(f, (short) 1);
            return;
        }
        short n = recordNumber(f, p1, mode, start);
        short len = receive(apdu, false);
        if (ins == ISOCMD.INS_WRITE_RECORD) {
            if (len != f.lengthOf(n)) {
                ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
            }
            orInto(buf, f.getData(), f.offsetOf(n), len);
        }
        f.updateRecord((byte) n, buf, ISO7816.OFFSET_CDATA, len);
        complete(f, moved(mode, n, start));
    }

    private void appendRecord(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        if (buf[ISO7816.OFFSET_P1] != 0 || (buf[ISO7816.OFFSET_P2] & ISOCMD.RECORD_P2_MODE) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        RecordFile f = recordFile(buf, ISOCMD.AC_APPEND);
        f.appendRecord(buf, ISO7816.OFFSET_CDATA, receive(apdu, false));
        complete(f, f instanceof CyclicRecordFile ? 1 : (short) (f.getRecordCount() & 0xFF));
    }

    /**
     * Simple search (P2 b3-b1 100 forward from record P1, 101 backward from P1; P1 = 00 starts at
     * the first or last record): returns the numbers of the records containing the command data.
     * Sets the record pointer on the first match; 6A83 when no record matches.
     */
    private void searchRecord(APDU apdu) {
        byte[] buf = apdu.getBuffer();
        byte p1 = buf[ISO7816.OFFSET_P1];
        byte mode = (byte) (buf[ISO7816.OFFSET_P2] & ISOCMD.RECORD_P2_MODE);
        if (mode != ISOCMD.SEARCH_FORWARD && mode != ISOCMD.SEARCH_BACKWARD) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        RecordFile f = recordFile(buf, ISOCMD.AC_READ);
        short len = receive(apdu, false);
        short count = (short) (f.getRecordCount() & 0xFF);
        short step = mode == ISOCMD.SEARCH_FORWARD ? (short) 1 : (short) -1;
        short n = p1 != 0 ? f.check(p1) : (step == 1 ? (short) 1 : count);
        // Move the search string to the end of the buffer; record numbers go to its start.
        short str = (short) (buf.length - len);
        Util.arrayCopyNonAtomic(buf, ISO7816.OFFSET_CDATA, buf, str, len);
        short found = 0;
        boolean all = true;
        for (; n > 0 && n <= count; n += step) {
            short recLen = f.lengthOf(n);
            short recOff = f.offsetOf(n);
            for (short i = 0; (short) (i + len) <= recLen; i++) {
                if (Util.arrayCompare(f.getData(), (short) (recOff + i), buf, str, len) == 0) {
                    if (found == str) {
                        all = false;
                    } else {
                        buf[found++] = (byte) n;
                    }
                    break;
                }
            }
        }
        if (found == 0) {
            ISOException.throwIt(ISO7816.SW_RECORD_NOT_FOUND);
        }
        short ne = apdu.setOutgoing();
        if (ne < found) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | found));
        }
        complete(f, (short) (buf[0] & 0xFF));
        sendData(apdu, buf, (short) 0, found, all ? LE_ANY : ne);
    }

    /** The SFI of a record command: P2 b8-b4 (0: the current EF). */
    private static byte recordSFI(byte[] buf) {
        return (byte) ((buf[ISO7816.OFFSET_P2] >> ISOCMD.RECORD_P2_SFI_SHIFT) & ISOCMD.SFI_MASK);
    }

    /** The record EF named by P2 b8-b4 (SFI; 0: the current EF), checked for the operation. */
    private RecordFile recordFile(byte[] buf, byte operation) {
        ISOFile f = namedEF(recordSFI(buf));
        if (!(f instanceof RecordFile)) {
            ISOException.throwIt(ISOCMD.SW_COMMAND_INCOMPATIBLE);
        }
        check(f, operation);
        return (RecordFile) f;
    }

    /**
     * Resolves P1 and P2 b3-b1 to an existing record number, from the record pointer start: 100 record
     * P1 (00: the current record); with P1 = 00, 000 first, 001 last, 010 next, 011 previous (next and
     * previous wrap in a cyclic EF). 6A86 for other modes, 6A83 when the record does not exist. Moves
     * nothing: the command moves the pointer once it completes (see moved).
     */
    private static short recordNumber(RecordFile f, byte p1, byte mode, short start) {
        short count = (short) (f.getRecordCount() & 0xFF);
        short n = start;
        if (mode == ISOCMD.RECORD_NUMBER) {
            return f.check(p1 != 0 ? p1 : (byte) n);
        }
        if (mode > ISOCMD.RECORD_PREVIOUS || p1 != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        boolean cyclic = f instanceof CyclicRecordFile;
        if (mode == ISOCMD.RECORD_FIRST) {
            n = 1;
        } else if (mode == ISOCMD.RECORD_LAST) {
            n = count;
        } else if (mode == ISOCMD.RECORD_NEXT) {
            n = (short) (n == count && cyclic ? 1 : n + 1);
        } else {
            n = (short) (n <= 1 && (cyclic || n == 0) ? count : n - 1);
        }
        return f.check((byte) n);
    }

    /** The record pointer after a completed command: on record n for first / last / next / previous. */
    private static short moved(byte mode, short n, short start) {
        return mode < ISOCMD.RECORD_NUMBER ? n : start;
    }

    // ---- DELETE FILE, ACTIVATE / DEACTIVATE FILE, TERMINATE DF / EF (7816-9) ----

    private void deleteFile(APDU apdu) {
        ISOFile f = target(apdu, false);
        if (f == root) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        check(f, ISOCMD.AC_DELETE);
        DedicatedFile up = f.getParent();
        up.removeChild(f);
        if (getCurrentDF().getLifeCycle() == ISOCMD.LCS_DELETED) {
            current[0] = up;
        }
        ISOFile ef = getCurrentEF();
        if (ef != null && ef.getLifeCycle() == ISOCMD.LCS_DELETED) {
            current[1] = null;
            pointer[0] = 0;
        }
        if (JCSystem.isObjectDeletionSupported()) {
            JCSystem.requestObjectDeletion();
        }
    }

    private void lifeCycle(APDU apdu, byte ins) {
        ISOFile f = target(apdu, ins == ISOCMD.INS_TERMINATE_DF);
        if ((ins == ISOCMD.INS_TERMINATE_DF) != (f instanceof DedicatedFile)
                && ins != ISOCMD.INS_ACTIVATE_FILE && ins != ISOCMD.INS_DEACTIVATE_FILE) {
            ISOException.throwIt(ISOCMD.SW_COMMAND_INCOMPATIBLE);
        }
        check(f, ISOCMD.AC_ADMIN);
        byte lcs = f.getLifeCycle();
        byte next = ISOCMD.LCS_TERMINATED;
        if (ins == ISOCMD.INS_ACTIVATE_FILE) {
            next = ISOCMD.LCS_ACTIVATED;
        } else if (ins == ISOCMD.INS_DEACTIVATE_FILE) {
            next = ISOCMD.LCS_DEACTIVATED;
            if (lcs < ISOCMD.LCS_DEACTIVATED) {
                ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
            }
        }
        if (lcs >= ISOCMD.LCS_TERMINATED) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        f.setLifeCycle(next);
    }

    /**
     * The file a DELETE / ACTIVATE / DEACTIVATE / TERMINATE names: P1-P2 0000; data a file identifier
     * of a child of the current DF, or absent for the current EF (the current DF when there is none,
     * or always for TERMINATE DF).
     */
    private ISOFile target(APDU apdu, boolean df) {
        byte[] buf = apdu.getBuffer();
        if (Util.getShort(buf, ISO7816.OFFSET_P1) != 0) {
            ISOException.throwIt(ISO7816.SW_INCORRECT_P1P2);
        }
        short len = receive(apdu, true);
        ISOFile f = getCurrentEF();
        if (len != 0) {
            lengthIs(len, (short) 2);
            f = getCurrentDF().findChild(Util.getShort(buf, ISO7816.OFFSET_CDATA));
            if (f == null) {
                ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
            }
        } else if (f == null || df) {
            f = getCurrentDF();
        }
        return f;
    }

    // ---- shared helpers ----

    /**
     * The EF a command names: the one with this SFI in the current DF, or the current EF for 0 (6A82,
     * 6986 when there is none). It becomes current only when the command completes (see complete).
     */
    private ISOFile namedEF(byte sfi) {
        ISOFile f = getCurrentEF();
        if (sfi != 0) {
            f = getCurrentDF().findSFI(sfi);
            if (f == null) {
                ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
            }
        } else if (f == null) {
            ISOException.throwIt(ISO7816.SW_COMMAND_NOT_ALLOWED);
        }
        return f;
    }

    /**
     * The record pointer a command starts from: none when it names its EF by SFI, which resets the
     * pointer even of the current EF (ISO 7816-4 7.3.1), else the current one.
     */
    private short startPointer(byte sfi) {
        return sfi != 0 ? 0 : (short) (pointer[0] & 0xFF);
    }

    /** A command on ef completed: ef is the current EF (its DF the current DF), the pointer on record n. */
    private void complete(ISOFile ef, short n) {
        current[0] = ef.getParent();
        current[1] = ef;
        pointer[0] = (byte) n;
    }

    /**
     * 6A82 when f was deleted; for read, update and append 6985 unless f is in creation,
     * initialisation or activated state; 6982 unless its access condition for the operation is met.
     */
    void check(ISOFile f, byte operation) {
        byte lcs = f.getLifeCycle();
        if (lcs == ISOCMD.LCS_DELETED) {
            ISOException.throwIt(ISO7816.SW_FILE_NOT_FOUND);
        }
        if (operation < ISOCMD.AC_DELETE && lcs != ISOCMD.LCS_ACTIVATED && lcs != ISOCMD.LCS_CREATION
                && lcs != ISOCMD.LCS_INITIALISATION) {
            ISOException.throwIt(ISO7816.SW_CONDITIONS_NOT_SATISFIED);
        }
        byte condition = f.getAccess(operation);
        if (condition == ISOCMD.AC_NEVER
                || (condition != ISOCMD.AC_ALWAYS && !security.isSatisfied(condition))) {
            ISOException.throwIt(ISO7816.SW_SECURITY_STATUS_NOT_SATISFIED);
        }
    }

    /**
     * Receives the command data (all of it must fit the APDU buffer, else 6700); 6700 as well when
     * there is none and empty is false.
     */
    static short receive(APDU apdu, boolean empty) {
        short len = apdu.setIncomingAndReceive();
        if (len != apdu.getIncomingLength() || (len == 0 && !empty)) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
        return len;
    }

    static void lengthIs(short len, short expected) {
        if (len != expected) {
            ISOException.throwIt(ISO7816.SW_WRONG_LENGTH);
        }
    }

    /**
     * Sends the first n bytes of the APDU buffer; nothing when Le is absent (Ne = 0), 6Cxx (xx = n)
     * when Le is below n.
     */
    private static void sendBuffer(APDU apdu, short n) {
        short ne = apdu.setOutgoing();
        if (ne == 0) {
            return;
        }
        if (ne < n) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | n));
        }
        sendData(apdu, apdu.getBuffer(), (short) 0, n, LE_ANY);
    }

    /** Sends n bytes of src (after setOutgoing); 6282 when ne asked for more and was not 00. */
    private static void sendData(APDU apdu, byte[] src, short off, short n, short ne) {
        apdu.setOutgoingLength(n);
        apdu.sendBytesLong(src, off, n);
        if (n < ne && ne != LE_ANY) {
            ISOException.throwIt(ISOCMD.SW_END_REACHED);
        }
    }

    /** The root of this processor's view. */
    DedicatedFile getRoot() {
        return root;
    }

    short getMaxFiles() {
        return maxFiles;
    }

    short getMaxBytes() {
        return maxBytes;
    }
}
