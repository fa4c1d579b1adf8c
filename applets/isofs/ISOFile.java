package cardsuite.isofs;

import javacard.framework.APDU;
import javacard.framework.ISO7816;
import javacard.framework.ISOException;
import javacard.framework.JCSystem;
import javacard.framework.Util;

/**
 * Common base of every file (the paper's FileSystem class): file identifier, short EF identifier,
 * file descriptor byte, life cycle status, access conditions and the place in a tree.
 *
 * An EF's content lives in one persistent array, {@code data}, allocated by the constructor and
 * never reallocated. The data methods of the subclasses do not check access conditions or the life
 * cycle: the applet that owns a file is trusted; the command processor (cardsuite.isocmd.FileSystem)
 * checks both before it calls them.
 */
public abstract class ISOFile {
    short fid;
    byte sfi; // 0: none
    byte descriptor; // ISOFS.FDB_*
    byte lcs;
    /** Access conditions by ISOFS.AC_* slot; null means always for every operation. */
    byte[] ac;
    DedicatedFile parent;
    ISOFile sibling;
    /** The file's content; null for a DF. */
    byte[] data;

    ISOFile(short fid, byte sfi, byte descriptor, short size) {
        this.fid = fid;
        this.sfi = sfi;
        this.descriptor = descriptor;
        lcs = ISOFS.LCS_ACTIVATED;
        if (size > 0) {
            data = new byte[size];
        }
    }

    public short getFID() {
        return fid;
    }

    /** The short EF identifier 1..30, or 0 when the file has none. */
    public byte getSFI() {
        return sfi;
    }

    /** The file descriptor byte: ISOFS.FDB_TRANSPARENT, _LINEAR_FIXED, _LINEAR_VARIABLE, _CYCLIC or _DF. */
    public byte getDescriptor() {
        return descriptor;
    }

    public byte getLifeCycle() {
        return lcs;
    }

    /** Sets the life cycle status byte (ISOFS.LCS_*); the caller decides which transitions it allows. */
    public void setLifeCycle(byte status) {
        lcs = status;
    }

    public DedicatedFile getParent() {
        return parent;
    }

    /** The next child of the same DF, in creation order, or null. */
    public ISOFile getSibling() {
        return sibling;
    }

    /** The file's content (the array itself, for the command processor), or null for a DF. */
    public byte[] getData() {
        return data;
    }

    /** Number of data bytes the file holds (tag 80); 0 for a DF. */
    public short getSize() {
        return data == null ? 0 : (short) data.length;
    }

    /** The access condition of an operation (ISOFS.AC_READ ...): ISOFS.AC_ALWAYS, AC_NEVER or a reference. */
    public byte getAccess(byte operation) {
        return ac == null ? ISOFS.AC_ALWAYS : ac[operation];
    }

    /**
     * Sets the five access conditions (creation time: allocates five bytes the first time).
     * Each is ISOFS.AC_ALWAYS, ISOFS.AC_NEVER or a reference checked by cardsuite.isocmd.SecurityStatus.
     */
    public void setAccess(byte read, byte update, byte append, byte delete, byte admin) {
        if (ac == null) {
            ac = new byte[ISOFS.AC_COUNT];
        }
        boolean own = beginAtomic();
        ac[ISOFS.AC_READ] = read;
        ac[ISOFS.AC_UPDATE] = update;
        ac[ISOFS.AC_APPEND] = append;
        ac[ISOFS.AC_DELETE] = delete;
        ac[ISOFS.AC_ADMIN] = admin;
        endAtomic(own);
    }

    /** Copies src into the file's data at dstOff inside a transaction (joins the caller's if one is open). */
    void store(short dstOff, byte[] src, short srcOff, short len) {
        boolean own = beginAtomic();
        Util.arrayCopy(src, srcOff, data, dstOff, len);
        endAtomic(own);
    }

    /** Opens a transaction unless one is already open; returns whether this call opened it. */
    public static boolean beginAtomic() {
        if (JCSystem.getTransactionDepth() != 0) {
            return false;
        }
        JCSystem.beginTransaction();
        return true;
    }

    /** Commits the transaction when own (beginAtomic opened it). */
    public static void endAtomic(boolean own) {
        if (own) {
            JCSystem.commitTransaction();
        }
    }

    /**
     * Sends len bytes from the start of the APDU buffer when the command's Le asks for exactly len
     * bytes; otherwise status 6Cxx with xx = len. Le absent or 00 counts as 256.
     */
    public static void sendExact(APDU apdu, short len) {
        if (apdu.setOutgoing() != len) {
            ISOException.throwIt((short) (ISO7816.SW_CORRECT_LENGTH_00 | len));
        }
        apdu.setOutgoingLength(len);
        apdu.sendBytes((short) 0, len);
    }

    /** The file after f in a pre-order walk of the subtree rooted at top, or null at its end. */
    public static ISOFile next(ISOFile f, ISOFile top) {
        if (f instanceof DedicatedFile && ((DedicatedFile) f).firstChild != null) {
            return ((DedicatedFile) f).firstChild;
        }
        while (f != top) {
            if (f.sibling != null) {
                return f.sibling;
            }
            f = f.parent;
        }
        return null;
    }
}
